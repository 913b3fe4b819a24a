"""Calendars over the API (v1/calendars): CRUD through the calendar service, the days of a year,
bad input a 400 naming the field with nothing saved; schedules name their calendars and the
preview marks excluded and moved fires."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from batchjobs.models import AuditEntry, BatchSchedule, Calendar
from batchjobs.services.calendars import calendar_create
from batchjobs.services.schedules import schedule_create
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db

CALENDARS = reverse("api:calendar-list")


def detail(calendar: Calendar) -> str:
    return reverse("api:calendar-detail", args=[calendar.pk])


def test_create_read_change_delete(api):
    created = api().post(CALENDARS, {"name": "KR", "country": "kr"}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["country"], body["excluded_dates"], body["schedule_count"]) == ("KR", [], 0)
    calendar = Calendar.objects.get()
    changed = api().patch(detail(calendar), {"excluded_dates": ["2027-12-31"]}, format="json")
    assert changed.status_code == 200, changed.json()
    assert api().get(CALENDARS).json()["results"][0]["excluded_dates"] == ["2027-12-31"]
    assert api().delete(detail(calendar)).status_code == 204
    assert not Calendar.objects.exists()
    assert AuditEntry.objects.count() == 3


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"country": "XX"}, "country", 'Unknown country "XX".'),
        ({"country": "US", "subdivision": "ZZ"}, "subdivision", '"ZZ" is not a subdivision of US'),
        ({"excluded_dates": ["2027-02-30"]}, "excluded_dates", '"2027-02-30" is not a date'),
        ({"excluded_dates": ["2027-03-02..2027-03-01"]}, "excluded_dates", "ends before it"),
        ({"excluded_dates": [5]}, "excluded_dates.0", "Not a valid string."),
        ({"business_days_only": "yes"}, "business_days_only", ""),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_saves_nothing(api, fields, field, message):
    response = api().post(CALENDARS, {"name": "bad", **fields}, format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert field in errors, errors
    assert message in " ".join(errors[field])
    assert not Calendar.objects.exists() and not AuditEntry.objects.exists()


def test_the_days_of_a_year_with_their_reasons_in_the_requests_language(api):
    korea = calendar_create(name="KR", country="KR")
    url = reverse("api:calendar-days", args=[korea.pk])
    response = api().get(url, {"year": 2027}, HTTP_ACCEPT_LANGUAGE="ko")
    assert response.status_code == 200
    days = {day["date"]: day["reason"] for day in response.json()["days"]}
    assert days["2027-02-09"] == "설날 대체 휴일"
    assert days["2027-09-15"] == "추석"
    assert "2027-02-10" not in days
    assert len(days) == 24
    assert api().get(url, {"year": "soon"}).status_code == 400


def test_a_schedule_names_its_calendars_and_the_preview_marks_the_fires(api):
    korea = calendar_create(name="KR", country="KR")
    job = handler_job("noop")
    response = api().post(
        reverse("api:schedule-list"),
        {"job": job.pk, "kind": "cron", "cron_expression": "0 2 * * *",
         "timezone": "Asia/Seoul", "calendars": ["KR"], "calendar_policy": "move"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.json()
    assert response.json()["calendars"] == ["KR"]
    schedule = BatchSchedule.objects.get()
    assert list(schedule.calendars.all()) == [korea]
    # every day excluded from tomorrow on: each fire moves (or finds no day)
    start = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    korea.excluded_dates = [f"{start}..{(datetime.now(UTC) + timedelta(days=6)).date()}"]
    korea.save()
    preview = api().get(reverse("api:schedule-preview", args=[schedule.pk]), {"count": 10})
    fires = preview.json()["fires"]
    assert any(fire["excluded"] and fire["moved_to"] for fire in fires), fires
    assert all(fire["reason"] for fire in fires if fire["excluded"])


def test_a_schedule_naming_an_unknown_calendar_is_a_400_saving_nothing(api):
    job = handler_job("noop")
    response = api().post(
        reverse("api:schedule-list"),
        {"job": job.pk, "kind": "cron", "cron_expression": "0 2 * * *", "calendars": ["nope"]},
        format="json",
    )
    assert response.status_code == 400
    assert "calendars" in str(response.json())
    assert not BatchSchedule.objects.exists()


def test_by_id_too_and_a_put_leaving_calendars_out_keeps_them(api):
    korea = calendar_create(name="KR", country="KR")
    schedule = schedule_create(job=handler_job("noop"), kind="cron", cron_expression="0 2 * * *",
                               calendars=[korea])  # fmt: skip
    url = reverse("api:schedule-detail", args=[schedule.pk])
    assert api().patch(url, {"description": "x"}, format="json").json()["calendars"] == ["KR"]
    assert api().patch(url, {"calendars": []}, format="json").json()["calendars"] == []
    assert api().patch(url, {"calendars": [korea.pk]}, format="json").json()["calendars"] == ["KR"]


def test_listing_schedules_reads_their_calendars_in_one_query(api):
    korea = calendar_create(name="KR", country="KR")
    job = handler_job("noop")
    client, url = api(), reverse("api:schedule-list")

    def queries_for_list() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    schedule_create(job=job, kind="cron", cron_expression="0 2 * * *", calendars=[korea])
    one = queries_for_list()
    for _ in range(4):
        schedule_create(job=job, kind="cron", cron_expression="0 2 * * *", calendars=[korea])
    assert queries_for_list() == one
