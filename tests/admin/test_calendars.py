"""Calendars in the admin: saved through the calendar service (normalised, audited), bad values
on their field with nothing saved, the days excluded ahead on the change page; the schedule page
takes calendars and a policy, and its preview marks the fires they exclude."""

import pytest
from django.urls import reverse

from batchjobs.models import AuditAction, AuditEntry, BatchSchedule, Calendar
from batchjobs.services.calendars import calendar_create
from batchjobs.services.schedules import schedule_create
from tests.support.admin_forms import form_errors, schedule_form_data
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db

ADD = reverse("admin:batchjobs_calendar_add")


def calendar_form(**fields: str) -> dict[str, str]:
    return {"name": "KR", "description": "", "country": "KR", "subdivision": "",
            "excluded_dates": "", **fields}  # fmt: skip


def test_a_calendar_added_in_the_admin_is_saved_by_the_service(admin_client, admin_user):
    response = admin_client.post(
        ADD,
        calendar_form(
            country="us", subdivision="ca", excluded_dates="2027-08-02..2027-08-06\n\n 2027-12-31 "
        ),  # fmt: skip
    )
    assert response.status_code == 302, form_errors(response)
    calendar = Calendar.objects.get()
    assert (calendar.country, calendar.subdivision) == ("US", "CA")
    assert calendar.excluded_dates == ["2027-08-02..2027-08-06", "2027-12-31"]
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor) == (AuditAction.CREATED, admin_user)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"country": "XX"}, "country"),
        ({"country": "US", "subdivision": "ZZ"}, "subdivision"),
        ({"excluded_dates": "2027-02-30"}, "excluded_dates"),
        ({"excluded_dates": "2027-03-02..2027-03-01"}, "excluded_dates"),
    ],
)
def test_a_bad_value_shows_on_its_field_and_saves_nothing(admin_client, fields, field):
    response = admin_client.post(ADD, calendar_form(**fields))
    assert response.status_code == 200
    assert field in form_errors(response)
    assert not Calendar.objects.exists() and not AuditEntry.objects.exists()


def test_the_change_page_lists_the_days_excluded_ahead(admin_client):
    calendar = calendar_create(name="weekends", business_days_only=True)
    page = admin_client.get(reverse("admin:batchjobs_calendar_change", args=[calendar.pk]))
    assert page.status_code == 200
    assert page.content.decode().count("Saturday") >= 52


def test_the_schedule_page_takes_calendars_and_marks_excluded_fires(admin_client):
    # given a calendar excluding every day for the next year and a half
    calendar = calendar_create(name="closed", excluded_dates=["2026-01-01..2030-12-31"])
    job = handler_job("noop")
    # when
    response = admin_client.post(
        reverse("admin:batchjobs_batchschedule_add"),
        schedule_form_data(job, calendars=[calendar.pk], calendar_policy="skip"),
    )
    # then
    assert response.status_code == 302, form_errors(response)
    schedule = BatchSchedule.objects.get()
    assert list(schedule.calendars.all()) == [calendar]
    assert AuditEntry.objects.filter(changes__has_key="calendars").exists()
    page = admin_client.get(reverse("admin:batchjobs_batchschedule_change", args=[schedule.pk]))
    assert page.content.decode().count("excluded</strong>") == 10


def test_a_schedule_saved_without_calendars_keeps_none(admin_client):
    schedule = schedule_create(job=handler_job("noop"), kind="cron", cron_expression="0 2 * * *")
    response = admin_client.post(
        reverse("admin:batchjobs_batchschedule_change", args=[schedule.pk]),
        schedule_form_data(schedule.job),
    )
    assert response.status_code == 302, form_errors(response)
    assert not schedule.calendars.exists()


def test_the_days_of_a_year_page_lists_korean_holidays_in_the_readers_language(admin_client):
    korea = calendar_create(name="KR", country="KR")
    url = reverse("admin:batchjobs_calendar_days", args=[korea.pk])
    page = admin_client.get(url, {"year": "2027"}, HTTP_ACCEPT_LANGUAGE="ko")
    text = page.content.decode()
    assert page.status_code == 200
    assert "<td>2027-02-09 (화요일)</td><td>설날 대체 휴일</td>" in text
    assert "2027-02-10" not in text
    assert 'href="?year=2028"' in text
    bad = admin_client.get(url, {"year": "0"})
    assert "The year must be a number from 1 to 9999." in bad.content.decode()


def test_the_schedule_list_filters_by_calendar(admin_client):
    korea = calendar_create(name="KR", country="KR")
    job = handler_job("noop")
    with_korea = schedule_create(job=job, kind="cron", cron_expression="0 2 * * *",
                                 description="with-kr", calendars=[korea])  # fmt: skip
    schedule_create(job=job, kind="cron", cron_expression="0 3 * * *", description="without")
    page = admin_client.get(
        reverse("admin:batchjobs_batchschedule_changelist"), {"calendars__id__exact": korea.pk}
    )
    assert [s.pk for s in page.context["cl"].result_list] == [with_korea.pk]
