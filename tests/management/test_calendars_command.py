"""`manage.py calendars`: the calendars listed, and the days of a year one excludes."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from batchjobs.services.calendars import calendar_create
from batchjobs.services.schedules import schedule_create
from tests.support.factories import handler_job

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


def test_the_schedule_preview_marks_excluded_fires():
    closed = calendar_create(name="closed", excluded_dates=["2026-01-01..2030-12-31"])
    schedule = schedule_create(job=handler_job("noop"), kind="cron", cron_expression="0 2 * * *",
                               calendars=[closed])  # fmt: skip
    out = StringIO()
    call_command("batchjobs", "preview", str(schedule.pk), "--count", "2", stdout=out)
    lines = out.getvalue().splitlines()[1:]
    assert len(lines) == 2
    assert all("  EXCLUDED: " in line and "by calendar 'closed'" in line for line in lines)
    out = StringIO()
    call_command("batchjobs", "preview", str(schedule.pk), "--count", "1", "--json", stdout=out)
    (fire,) = json.loads(out.getvalue())["fires"]
    assert (fire["excluded"], fire["moved_to"]) == (True, None)
    assert "custom excluded range 2026-01-01..2030-12-31" in fire["reason"]
