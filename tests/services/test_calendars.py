"""Calendar services: saves validated with the field named and nothing half-saved, audited;
schedules given calendars by name; export and import carry both."""

from datetime import date

import pytest

from batchjobs.errors import InvalidInput
from batchjobs.models import AuditAction, AuditEntry, Calendar
from batchjobs.services.calendars import (
    calendar_create,
    calendar_days,
    calendar_delete,
    calendar_update,
)
from batchjobs.services.definitions import definitions_export, definitions_import
from batchjobs.services.schedules import schedule_create, schedule_update
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db


def test_a_calendar_is_created_normalised_and_audited():
    calendar = calendar_create(name="US-CA", country="us", subdivision="ca",
                               excluded_dates=[" 2027-08-02..2027-08-06 "])  # fmt: skip
    calendar.refresh_from_db()
    assert (calendar.country, calendar.subdivision) == ("US", "CA")
    assert calendar.excluded_dates == ["2027-08-02..2027-08-06"]
    entry = AuditEntry.objects.get()
    assert entry.action == AuditAction.CREATED
    assert entry.changes["country"] == [None, "US"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"country": "XX"}, "country"),
        ({"country": "US", "subdivision": "ZZ"}, "subdivision"),
        ({"subdivision": "CA"}, "subdivision"),
        ({"excluded_dates": ["2027-02-30"]}, "excluded_dates"),
        ({"excluded_dates": ["2027-03-02..2027-03-01"]}, "excluded_dates"),
        ({"excluded_dates": "2027-01-01"}, "excluded_dates"),
        ({"name": ""}, "name"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_input_names_the_field_and_saves_nothing(fields, field):
    with pytest.raises(InvalidInput) as raised:
        calendar_create(**{"name": "bad", **fields})
    assert field in raised.value.field_errors
    assert not Calendar.objects.exists() and not AuditEntry.objects.exists()


def test_a_taken_name_is_refused_on_name():
    calendar_create(name="KR", country="KR")
    with pytest.raises(InvalidInput) as raised:
        calendar_create(name="KR")
    assert raised.value.field_errors == {"name": ["A calendar named 'KR' already exists."]}


def test_an_update_and_a_delete_are_audited():
    calendar = calendar_create(name="KR", country="KR")
    calendar_update(calendar=calendar, business_days_only=True)
    calendar_delete(calendar=calendar)
    actions = list(AuditEntry.objects.order_by("pk").values_list("action", flat=True))
    assert actions == [AuditAction.CREATED, AuditAction.CHANGED, AuditAction.DELETED]


def test_calendar_days_lists_a_bounded_span():
    korea = calendar_create(name="KR", country="KR")
    days = calendar_days(calendar=korea, start=date(2027, 2, 1), end=date(2027, 2, 28))
    assert [day for day, _why in days] == [date(2027, 2, d) for d in (6, 7, 8, 9)]
    with pytest.raises(InvalidInput):
        calendar_days(calendar=korea, start=date(2027, 1, 1), end=date(2028, 6, 1))


def test_a_schedule_takes_its_calendars_and_an_unchanged_update_keeps_them():
    korea = calendar_create(name="KR", country="KR")
    job = handler_job("noop")
    schedule = schedule_create(
        job=job, kind="cron", cron_expression="0 2 * * *", timezone="Asia/Seoul",
        calendars=[korea], calendar_policy="move",
    )  # fmt: skip
    schedule_update(schedule=schedule, description="nightly")
    assert list(schedule.calendars.all()) == [korea]
    assert schedule.calendar_policy == "move"
    schedule_update(schedule=schedule, calendars=[])
    assert not schedule.calendars.exists()
    changes = [
        e.changes for e in AuditEntry.objects.filter(changes__has_key="calendars").order_by("pk")
    ]
    assert changes == [{"calendars": [[], ["KR"]]}, {"calendars": [["KR"], []]}]


def test_export_then_import_elsewhere_recreates_calendars_and_their_schedules():
    # given
    korea = calendar_create(name="KR", country="KR", excluded_dates=["2027-12-31"])
    job = handler_job("noop", name="nightly")
    schedule_create(job=job, kind="cron", cron_expression="0 2 * * *", timezone="Asia/Seoul",
                    calendars=[korea], calendar_policy="move")  # fmt: skip
    document = definitions_export(names=["nightly"])
    assert document["calendars"] == [
        {"name": "KR", "description": "", "country": "KR", "subdivision": "",
         "business_days_only": False, "excluded_dates": ["2027-12-31"]}
    ]  # fmt: skip
    assert document["jobs"][0]["schedules"][0]["calendars"] == ["KR"]
    job.delete()
    korea.delete()
    # when
    result = definitions_import(document=document)
    # then
    assert (result.calendars_created, result.schedules_created) == (1, 1)
    assert definitions_export(names=["nightly"]) == document


def test_an_import_naming_an_unknown_calendar_or_country_changes_nothing():
    document = {
        "calendars": [{"name": "bad", "country": "XX"}],
        "jobs": [],
    }
    with pytest.raises(InvalidInput) as raised:
        definitions_import(document=document)
    assert "calendars[0].country" in raised.value.field_errors
    job = handler_job("noop", name="nightly")
    document = {"jobs": [{**definitions_export(names=["nightly"])["jobs"][0],
                          "schedules": [{"kind": "cron", "cron_expression": "0 2 * * *",
                                         "calendars": ["nope"]}]}]}  # fmt: skip
    with pytest.raises(InvalidInput) as raised:
        definitions_import(document=document)
    assert list(raised.value.field_errors) == ["nightly.schedules[0].calendars"]
    assert not job.schedules.exists() and not Calendar.objects.exists()
