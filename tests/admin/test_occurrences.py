"""The admin's account of occurrences: read-only, filtered by outcome and schedule, linked
from the schedule's page."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from batchjobs.models import OccurrenceOutcome
from batchjobs.models.clock import database_now
from batchjobs.scheduling.occurrences import Occurrence, occurrences_record
from batchjobs.services.schedules import schedule_create
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:batchjobs_scheduleoccurrence_changelist")
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_the_records_are_listed_by_schedule_and_outcome_and_cannot_be_edited(admin_client):
    # given two schedules' records
    job = handler_job("noop")
    mine, other = (schedule_create(job=job, kind="interval", interval_every=1) for _ in "ab")
    occurrences_record(
        [Occurrence(mine.pk, T0, OccurrenceOutcome.PAUSED, "the schedule was paused from x"),
         Occurrence(mine.pk, T0 + timedelta(minutes=1), OccurrenceOutcome.EXCLUDED,
                    "excluded by calendar 'KR'", fires=2,
                    last_scheduled_for=T0 + timedelta(minutes=2)),
         Occurrence(other.pk, T0, OccurrenceOutcome.FIRED)],
        now=database_now(),
    )  # fmt: skip
    # when
    page = admin_client.get(CHANGELIST, {"schedule__id__exact": mine.pk})
    excluded = admin_client.get(CHANGELIST, {"outcome__exact": "excluded"})
    schedule_page = admin_client.get(
        reverse("admin:batchjobs_batchschedule_change", args=[mine.pk])
    )
    # then
    assert page.status_code == 200
    text = page.content.decode()
    assert "the schedule was paused from x" in text and "excluded by calendar" in text
    assert "2026-06-01 12:01:00" in text and "12:02:00" in text  # a run: first to last
    assert page.context["cl"].result_count == 2
    assert excluded.context["cl"].result_count == 1
    assert f"{CHANGELIST}?schedule__id__exact={mine.pk}" in schedule_page.content.decode()
    assert admin_client.get(reverse("admin:batchjobs_scheduleoccurrence_add")).status_code == 403
