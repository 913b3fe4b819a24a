"""Fire-time templates for HTTP jobs: `{{ name }}` and `{{ name | filter:"arg" | ... }}`.

A small language read by hand, never evaluated: a name is looked up in a fixed table of
variables, a filter in a fixed table of functions, an argument is a double-quoted string
literal. Nothing a user types can run code, read an attribute or format an object; parsing
and rendering raise nothing but TemplateError.

    https://api.example.com/export?day={{ data_interval_start | date:"%Y-%m-%d" }}
    {"period": {{ logical_time | tz:"Asia/Seoul" | json }}, "run": {{ execution_id }}}

Variables: VARIABLES, and params.<key>[.<key>...] (the run's parameters). A value that is
missing or null is an error unless a `default` filter gives one. Strings render as they are,
date-times in ISO 8601, other values as JSON. `{{` always opens an expression.
"""

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils.translation import gettext

from .zone import zone_suggestions

VARIABLES = (
    "scheduled_for",
    "logical_time",
    "data_interval_start",
    "data_interval_end",
    "execution_id",
    "attempt",
    "job_name",
)
# The variables whose values a run reads from its execution row (the rest it has at hand).
FIRE_TIME_VARIABLES = frozenset(
    {"scheduled_for", "logical_time", "data_interval_start", "data_interval_end"}
)
PARAMS = "params"
OPEN, CLOSE = "{{", "}}"
# strftime directives that mean the same on every platform (C99 and ISO 8601 week dates);
# any other is refused rather than left to the C library to print or garble.
STRFTIME_DIRECTIVES = frozenset("aAbBcdfGHIjmMpSuUVwWxXyYzZ%")

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SPACE = re.compile(r"\s*")


class TemplateError(ValueError):
    """A template that cannot be read, or a value it cannot render; says what and where."""


class _Missing:
    """A value the run does not have (a parameter not given, no scheduled time)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


class Encoded(str):
    """Text already percent-encoded (the urlencode filter): a URL takes it as it is."""


@dataclass(frozen=True)
class Filter:
    name: str
    argument: str | None


@dataclass(frozen=True)
class Expression:
    path: tuple[str, ...]  # ("logical_time",) or ("params", "a", "b")
    filters: tuple[Filter, ...]
    position: int  # of its `{{`, 0-based

    @property
    def name(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True)
class Template:
    parts: tuple[str | Expression, ...]

    @property
    def expressions(self) -> tuple[Expression, ...]:
        return tuple(part for part in self.parts if isinstance(part, Expression))

    @property
    def variables(self) -> frozenset[str]:
        """The root names it reads (`params` for any parameter)."""
        return frozenset(expression.path[0] for expression in self.expressions)


# --- parsing --------------------------------------------------------------------------------


def _error(message: str, position: int) -> TemplateError:
    return TemplateError(
        gettext("%(message)s (at character %(position)s)")
        % {"message": message, "position": position + 1}
    )


def template_parse(text: str) -> Template:
    """Read `text`; raise TemplateError naming the first unknown variable or filter, bad
    argument or unclosed expression, with its position (1-based)."""
    parts: list[str | Expression] = []
    index = 0
    while True:
        start = text.find(OPEN, index)
        if start < 0:
            if index < len(text):
                parts.append(text[index:])
            return Template(tuple(parts))
        if start > index:
            parts.append(text[index:start])
        end = text.find(CLOSE, start + len(OPEN))
        if end < 0:
            raise _error(gettext("{{ is not closed by }}"), start)
        parts.append(_expression(text[start + len(OPEN) : end], start, start + len(OPEN)))
        index = end + len(CLOSE)


class _Reader:
    def __init__(self, source: str, offset: int):
        self.source, self.offset, self.at = source, offset, 0

    def position(self) -> int:
        return self.offset + self.at

    def skip_space(self) -> None:
        self.at = _SPACE.match(self.source, self.at).end()  # type: ignore[union-attr]

    def match(self, pattern: re.Pattern[str]) -> str | None:
        found = pattern.match(self.source, self.at)
        if found is None:
            return None
        self.at = found.end()
        return found.group()

    def take(self, literal: str) -> bool:
        if self.source.startswith(literal, self.at):
            self.at += len(literal)
            return True
        return False

    def done(self) -> bool:
        return self.at >= len(self.source)

    def string(self) -> str:
        """A double-quoted literal; backslash escapes only a quote or a backslash."""
        start = self.position()
        if not self.take('"'):
            raise _error(gettext('expected a "quoted" argument'), start)
        chars: list[str] = []
        while not self.done():
            char = self.source[self.at]
            self.at += 1
            if char == '"':
                return "".join(chars)
            if char == "\\" and not self.done() and self.source[self.at] in '"\\':
                char = self.source[self.at]
                self.at += 1
            chars.append(char)
        raise _error(gettext("the quoted argument is not closed"), start)


def _expression(source: str, start: int, offset: int) -> Expression:
    reader = _Reader(source, offset)
    reader.skip_space()
    path = _path(reader)
    filters: list[Filter] = []
    reader.skip_space()
    while reader.take("|"):
        reader.skip_space()
        at = reader.position()
        name = reader.match(_NAME)
        if name is None:
            raise _error(gettext("expected a filter name after |"), at)
        argument = None
        if reader.take(":"):
            argument = reader.string()
        filters.append(_filter_checked(name, argument, at))
        reader.skip_space()
    if not reader.done():
        raise _error(
            gettext("unexpected %(text)s in the expression") % {"text": repr(source[reader.at :])},
            reader.position(),
        )
    return Expression(path=path, filters=tuple(filters), position=start)


def _path(reader: _Reader) -> tuple[str, ...]:
    at = reader.position()
    name = reader.match(_NAME)
    if name is None:
        raise _error(gettext("expected a variable name"), at)
    if name == PARAMS:
        keys: list[str] = []
        while reader.take("."):
            key = reader.match(_KEY)
            if key is None:
                raise _error(gettext("expected a parameter name after ."), reader.position())
            keys.append(key)
        if not keys:
            raise _error(gettext("name a parameter: params.<name>"), at)
        return (PARAMS, *keys)
    if name not in VARIABLES:
        raise _error(
            gettext("unknown variable %(name)s; known: %(names)s")
            % {"name": repr(name), "names": ", ".join((*VARIABLES, "params.<name>"))},
            at,
        )
    return (name,)


def _filter_checked(name: str, argument: str | None, at: int) -> Filter:
    spec = _FILTERS.get(name)
    if spec is None:
        raise _error(
            gettext("unknown filter %(name)s; known: %(names)s")
            % {"name": repr(name), "names": ", ".join(_FILTERS)},
            at,
        )
    takes, check = spec.takes, spec.check
    if argument is None and takes == "required":
        raise _error(
            gettext('the filter %(name)s needs an argument: %(name)s:"..."') % {"name": name}, at
        )
    if argument is not None and takes == "none":
        raise _error(gettext("the filter %(name)s takes no argument") % {"name": name}, at)
    if argument is not None and check is not None:
        problem = check(argument)
        if problem:
            raise _error(problem, at)
    return Filter(name=name, argument=argument)


def _strftime_problem(pattern: str) -> str | None:
    index = 0
    while (index := pattern.find("%", index)) >= 0:
        directive = pattern[index + 1 : index + 2]
        if directive not in STRFTIME_DIRECTIVES:
            return gettext("%(directive)s is not a date format directive; use e.g. %%Y-%%m-%%d") % {
                "directive": repr("%" + directive)
            }
        index += 2
    return None


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _zone_problem(name: str) -> str | None:
    if _zone(name) is None:
        close = zone_suggestions(name, limit=3, typos_only=True)
        if close:
            return gettext("unknown time zone %(name)s; did you mean %(zones)s?") % {
                "name": repr(name),
                "zones": ", ".join(close),
            }
        return gettext("unknown time zone %(name)s; use an IANA name such as Asia/Seoul") % {
            "name": repr(name)
        }
    return None


# --- rendering ------------------------------------------------------------------------------


def _as_datetime(value: Any, filter_name: str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            return _as_datetime(datetime.fromisoformat(value), filter_name)
        except ValueError:
            pass
    raise TemplateError(
        gettext("the filter %(name)s needs a date and time, not %(value)s")
        % {"name": filter_name, "value": _shown(value)}
    )


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return json.dumps(value, default=str, ensure_ascii=False)


def _shown(value: Any) -> str:
    text = _text(value)
    return repr(text if len(text) <= 40 else text[:40] + "…")


def _date(value: Any, argument: str | None) -> str:
    moment = _as_datetime(value, "date")
    return moment.isoformat() if argument is None else moment.strftime(argument)


def _tz(value: Any, argument: str | None) -> datetime:
    zone = _zone(argument or "")
    if zone is None:  # refused at parse; a guard for a template built by hand
        raise TemplateError(_zone_problem(argument or "") or "")
    return _as_datetime(value, "tz").astimezone(zone)


def _json(value: Any, argument: str | None) -> str:
    return json.dumps(value.isoformat() if isinstance(value, datetime) else value,
                      default=str, ensure_ascii=False)  # fmt: skip


@dataclass(frozen=True)
class _FilterSpec:
    apply: Callable[[Any, str | None], Any]
    takes: str  # "none", "optional" or "required" (an argument)
    check: Callable[[str], str | None] | None = None


_FILTERS: dict[str, _FilterSpec] = {
    "date": _FilterSpec(_date, "optional", _strftime_problem),
    "tz": _FilterSpec(_tz, "required", _zone_problem),
    "urlencode": _FilterSpec(lambda value, _: Encoded(quote(_text(value), safe="")), "none"),
    "json": _FilterSpec(_json, "none"),
    "default": _FilterSpec(lambda value, argument: value, "required"),
    "upper": _FilterSpec(lambda value, _: _text(value).upper(), "none"),
    "lower": _FilterSpec(lambda value, _: _text(value).lower(), "none"),
}
FILTERS = tuple(_FILTERS)


def _lookup(path: tuple[str, ...], variables: Mapping[str, Any]) -> Any:
    value = variables.get(path[0], MISSING)
    for key in path[1:]:
        value = value.get(key, MISSING) if isinstance(value, Mapping) else MISSING
    return value


def _value(expression: Expression, variables: Mapping[str, Any]) -> Any:
    value = _lookup(expression.path, variables)
    for each in expression.filters:
        if each.name == "default":
            if value is MISSING or value is None or value == "":
                value = each.argument
            continue
        if value is MISSING or value is None:
            continue  # nothing to filter; a later default may still give a value
        value = _FILTERS[each.name].apply(value, each.argument)
    if value is MISSING or value is None:
        raise TemplateError(
            gettext('%(name)s has no value in this run; give one with | default:"..."')
            % {"name": expression.name}
        )
    return value


def template_render(
    template: Template,
    variables: Mapping[str, Any],
    *,
    escape: Callable[[str], str] = lambda text: text,
) -> str:
    """The text with each expression's value, passed through `escape` (a URL's percent-
    encoding: url_escape). Raises TemplateError for a value it cannot render."""
    out: list[str] = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(part)
            continue
        try:
            out.append(escape(_text(_value(part, variables))))
        except TemplateError as exc:
            raise _error(str(exc), part.position) from None
        except (ValueError, OverflowError, TypeError) as exc:  # strftime of an odd year, say
            raise _error(str(exc), part.position) from None
    return "".join(out)


def url_escape(text: str) -> str:
    """A value put into a URL's path or query: percent-encoded whole, so that it cannot add a
    path segment, a query parameter or a fragment; text the urlencode filter made stays."""
    return text if isinstance(text, Encoded) else quote(text, safe="")


def header_escape(text: str) -> str:
    """A value put into a header: one line, or it could add a header of its own."""
    if "\r" in text or "\n" in text or "\0" in text:
        raise TemplateError(gettext("the value would break the header onto a new line"))
    return text


# --- URLs -----------------------------------------------------------------------------------

# What a URL's expressions are replaced with to check the rest of it at save time.
URL_PLACEHOLDER = "x"


def url_template_parse(text: str) -> Template:
    """A URL template whose scheme, host and port are literal: the first expression comes
    after the path's `/`, the `?` or the `#` that ends the host, so the SSRF guard's check of
    the saved URL holds for every rendering of it."""
    template = template_parse(text)
    if template.expressions:
        first = template.expressions[0].position
        prefix = text[:first]
        scheme_end = prefix.find("://")
        authority_end = -1 if scheme_end < 0 else _authority_end(prefix, scheme_end + 3)
        if authority_end < 0:
            raise _error(
                gettext(
                    "the scheme and host must be written out; templates may be used in the path "
                    "and the query only"
                ),
                first,
            )
    return template


def _authority_end(prefix: str, start: int) -> int:
    ends = [index for index in (prefix.find(mark, start) for mark in "/?#") if index >= 0]
    return min(ends) if ends else -1


def url_template_skeleton(template: Template) -> str:
    """The URL with each expression replaced by URL_PLACEHOLDER: what the save-time URL check
    reads (the host is literal, so it is the host of every rendering)."""
    return "".join(part if isinstance(part, str) else URL_PLACEHOLDER for part in template.parts)


def url_skeleton(url: str) -> str:
    """The URL as the host checks read it: its skeleton when it is a valid template, else the
    URL as written (whose own errors the checks then report)."""
    try:
        return url_template_skeleton(url_template_parse(url))
    except TemplateError:
        return url
