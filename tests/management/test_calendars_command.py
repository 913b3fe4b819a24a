"""`manage.py calendars`: the calendars listed, and the days of a year one excludes."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from batchjobs.services.calendars import calendar_create

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("calendars", *args, stdout=out)
    return out.getvalue()


def test_list_and_days_of_2027():
    calendar_create(name="KR", country="KR", business_days_only=True)
    assert run("list") == "KR: holidays KR +weekends, 0 custom dates/ranges, 0 schedules\n"
    document = json.loads(run("days", "KR", "--year", "2027", "--json"))
    days = {day["date"]: day["reason"] for day in document["days"]}
    assert days["2027-02-09"] == "Alternative holiday for Korean New Year"
    assert days["2027-01-02"] == "Saturday"
    assert "2027-02-10" not in days
    assert "2027-09-15 Wed  Chuseok" in run("days", "KR", "--year", "2027")


def test_an_unknown_calendar_is_bad_input():
    with pytest.raises(CommandError, match="no calendar named 'nope'") as raised:
        run("days", "nope")
    assert raised.value.returncode == 2
