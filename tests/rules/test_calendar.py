"""Calendars' rules: countries and subdivisions the holidays library knows, excluded dates."""

from datetime import date

import pytest

from batchjobs.rules.calendar import (
    MAX_EXCLUDED_ENTRIES,
    country_errors,
    excluded_ranges,
    holiday_language,
    subdivision_errors,
    subdivision_normalised,
)


def test_a_known_country_or_none_passes():
    assert country_errors("KR") == country_errors("") == []


def test_an_unknown_country_is_refused_with_suggestions():
    (message,) = country_errors("KOREA")
    assert message.startswith('Unknown country "KOREA". Did you mean KR (South Korea)')
    assert country_errors("XX")[0].startswith('Unknown country "XX".')


def test_a_subdivision_must_be_the_countrys():
    assert subdivision_errors("US", "CA") == []
    assert "not a subdivision of US" in subdivision_errors("US", "ZZ")[0]
    assert "KR has no subdivisions" in subdivision_errors("KR", "11")[0]
    assert subdivision_errors("", "CA") == ["A subdivision needs its country."]
    assert subdivision_normalised("us", "ca") == "CA"


def test_excluded_dates_read_dates_and_inclusive_ranges():
    ranges, errors = excluded_ranges(["2027-02-06", " 2027-08-02 .. 2027-08-06 "])
    assert errors == []
    assert ranges == [(date(2027, 2, 6), date(2027, 2, 6)), (date(2027, 8, 2), date(2027, 8, 6))]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("2027-02-30", '"2027-02-30" is not a date'),
        ("20270206", '"20270206" is not a date'),
        ("2027-03-02..2027-03-01", '"2027-03-02..2027-03-01" ends before it starts.'),
        ("2020-01-01..2031-01-01", "spans more than 3660 days"),
        (3, '3 is not a "YYYY-MM-DD" date or range.'),
    ],
)
def test_a_bad_entry_is_named(entry, expected):
    ranges, errors = excluded_ranges(["2027-01-01", entry])
    assert len(ranges) == 1
    (error,) = errors
    assert expected in error


def test_excluded_dates_are_a_bounded_list():
    assert excluded_ranges("2027-01-01")[1]
    assert excluded_ranges(["2027-01-01"] * (MAX_EXCLUDED_ENTRIES + 1))[1] == [
        f"At most {MAX_EXCLUDED_ENTRIES} dates and ranges."
    ]


def test_holiday_names_in_the_deployment_language_where_the_library_has_it():
    assert holiday_language("KR", "ko") == "ko"
    assert holiday_language("KR", "en") == "en_US"
    assert holiday_language("DE", "ko") is None  # the country's own default
