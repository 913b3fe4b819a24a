"""Exclusion calendars' rules: the countries and subdivisions whose public holidays the
`holidays` library (python-holidays) knows, custom excluded dates and ranges, and the holidays
of one country and year with their names in a language the library has."""

import difflib
from datetime import date
from functools import cache

import holidays
from django.utils.translation import gettext
from holidays.registry import COUNTRIES

# One range covers at most ten years; a calendar lists at most this many dates and ranges.
MAX_RANGE_DAYS = 3660
MAX_EXCLUDED_ENTRIES = 1000
RANGE_SEPARATOR = ".."


@cache
def supported_countries() -> dict[str, tuple[str, ...]]:
    """ISO 3166-1 alpha-2 code -> the codes of its subdivisions the library knows."""
    return {code: tuple(subdivs) for code, subdivs in holidays.list_supported_countries().items()}


@cache
def country_names() -> dict[str, str]:
    """Code -> the country's English name ('KR' -> 'South Korea'), from the library's registry."""
    names: dict[str, str] = {}
    for class_name, code, *_aliases in COUNTRIES.values():
        # "SouthKorea" -> "South Korea": the registry's class names are the names in camel case.
        names[code] = "".join(f" {c}" if c.isupper() and i else c for i, c in enumerate(class_name))
    return names


def country_normalised(country: str) -> str:
    return country.strip().upper()


def subdivision_normalised(country: str, subdivision: str) -> str:
    """The subdivision as the library spells it ('ca' -> 'CA'), or as typed if it knows none."""
    typed = subdivision.strip()
    for known in supported_countries().get(country_normalised(country), ()):
        if known.casefold() == typed.casefold():
            return known
    return typed


def _country_suggestions(typed: str) -> list[str]:
    names = country_names()
    by_code = difflib.get_close_matches(typed.upper(), list(names), n=3, cutoff=0.5)
    by_name = [
        code
        for name in difflib.get_close_matches(
            typed.casefold(), [n.casefold() for n in names.values()], n=3, cutoff=0.6
        )
        for code, known in names.items()
        if known.casefold() == name
    ]
    return list(dict.fromkeys(by_name + by_code))[:3]


def country_errors(country: str) -> list[str]:
    """Why `country` (normalised) names no country the library has holidays for; empty is fine."""
    if not country or country in supported_countries():
        return []
    message = gettext('Unknown country "%(country)s".') % {"country": country}
    suggestions = _country_suggestions(country)
    if suggestions:
        names = country_names()
        message += " " + gettext("Did you mean %(suggestions)s?") % {
            "suggestions": ", ".join(f"{code} ({names[code]})" for code in suggestions)
        }
    return [message]


def subdivision_errors(country: str, subdivision: str) -> list[str]:
    """Why `subdivision` is no subdivision of the (known) `country`; empty is fine."""
    if not subdivision:
        return []
    if not country:
        return [gettext("A subdivision needs its country.")]
    known = supported_countries().get(country)
    if known is None or subdivision in known:
        return []  # an unknown country is the country's error
    if not known:
        return [
            gettext("%(country)s has no subdivisions with holidays of their own.")
            % {"country": country}
        ]
    return [
        gettext('"%(subdivision)s" is not a subdivision of %(country)s; use one of: %(known)s.')
        % {"subdivision": subdivision, "country": country, "known": ", ".join(known)}
    ]


def _parse_day(text: str) -> date:
    if len(text) != 10:  # fromisoformat takes "20270206" too: only YYYY-MM-DD is documented
        raise ValueError(text)
    return date.fromisoformat(text)


def excluded_ranges(entries: object) -> tuple[list[tuple[date, date]], list[str]]:
    """The inclusive (start, end) ranges of a calendar's excluded_dates, and why any entry is
    wrong (each message names its entry)."""
    if not isinstance(entries, list):
        return [], [
            gettext('Must be a list of "YYYY-MM-DD" dates and "YYYY-MM-DD..YYYY-MM-DD" ranges.')
        ]
    if len(entries) > MAX_EXCLUDED_ENTRIES:
        return [], [gettext("At most %(max)s dates and ranges.") % {"max": MAX_EXCLUDED_ENTRIES}]
    ranges: list[tuple[date, date]] = []
    errors: list[str] = []
    for entry in entries:
        if not isinstance(entry, str):
            errors.append(
                gettext('%(entry)s is not a "YYYY-MM-DD" date or range.') % {"entry": repr(entry)}
            )
            continue
        start_text, _sep, end_text = entry.strip().partition(RANGE_SEPARATOR)
        try:
            start = _parse_day(start_text.strip())
            end = _parse_day(end_text.strip()) if _sep else start
        except ValueError:
            errors.append(
                gettext(
                    '"%(entry)s" is not a date: write "YYYY-MM-DD" (a real day) or '
                    '"YYYY-MM-DD..YYYY-MM-DD".'
                )
                % {"entry": entry}
            )
            continue
        if end < start:
            errors.append(gettext('"%(entry)s" ends before it starts.') % {"entry": entry})
        elif (end - start).days >= MAX_RANGE_DAYS:
            errors.append(
                gettext('"%(entry)s" spans more than %(max)s days.')
                % {"entry": entry, "max": MAX_RANGE_DAYS}
            )
        else:
            ranges.append((start, end))
    return ranges, errors


@cache
def holiday_language(country: str, language: str) -> str | None:
    """The library's language for holiday names closest to the deployment's ('ko' -> 'ko',
    'en' -> 'en_US'), or None for the country's own default."""
    if not country:
        return None
    supported = holidays.country_holidays(country).supported_languages
    if language in supported:
        return language
    base = language.replace("-", "_").split("_")[0].casefold()
    for candidate in supported:
        if candidate.split("_")[0].casefold() == base:
            return candidate
    return None


@cache
def country_holidays(
    country: str, subdivision: str, year: int, language: str | None
) -> dict[date, str]:
    """The public holidays of one country (and subdivision) in one year: date -> name(s).
    Cached for the process: beat asks for the same few years of the same few countries."""
    found = holidays.country_holidays(
        country, subdiv=subdivision or None, years=year, language=language
    )
    return dict(found.items())
