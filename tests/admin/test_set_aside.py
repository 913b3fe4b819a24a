"""Rows set aside (DESIGN.md §4, invariant 11) in the admin: a marker and a filter on the lists,
the error and what to do on the row's page, which opens whatever was stored behind validation's
back."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse

from batchjobs.models import BatchLog, BatchSchedule, ExecutionStatus, Trigger
from batchjobs.models.clock import database_now
from batchjobs.scheduling.firing import schedules_fire_due
from batchjobs.services.schedules import schedule_create
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db

SCHEDULES = reverse("admin:batchjobs_batchschedule_changelist")
EXECUTIONS = reverse("admin:batchjobs_batchlog_changelist")


def listed(response) -> set[int]:
    assert response.status_code == 200
    return {row.pk for row in response.context["cl"].result_list}


@pytest.fixture
def set_aside_schedule():
    """A due schedule beat set aside (its time zone was stored behind validation's back), and
    a good one that fired."""
    job = handler_job("noop", name="nightly")
    good, bad = (schedule_create(job=job, kind="interval", interval_every=1) for _ in "ab")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE batchjobs_batchschedule SET timezone = 'Nowhere/Land' WHERE id = %s", [bad.pk]
        )
    BatchSchedule.objects.update(next_fire_at=database_now() - timedelta(seconds=1))
    schedules_fire_due()
    return good, bad


def test_the_schedule_list_marks_and_filters_set_aside_schedules(admin_client, set_aside_schedule):
    good, bad = set_aside_schedule
    everything = admin_client.get(SCHEDULES)
    assert listed(everything) == {good.pk, bad.pk}
    assert everything.content.decode().count("set aside</span>") == 1
    assert listed(admin_client.get(SCHEDULES, {"set_aside": "yes"})) == {bad.pk}
    assert listed(admin_client.get(SCHEDULES, {"set_aside": "no"})) == {good.pk}


def test_a_set_aside_schedules_page_says_why_and_what_to_do(admin_client, set_aside_schedule):
    good, bad = set_aside_schedule
    page = admin_client.get(reverse("admin:batchjobs_batchschedule_change", args=[bad.pk]))
    content = page.content.decode()
    assert page.status_code == 200  # its fires cannot be computed, yet the page opens
    assert "Set aside by beat" in content
    assert "ZoneInfoNotFoundError: " in content
    assert "Fix and save to fire again." in content
    assert re.search(r"Cannot be computed: [^<]*Nowhere/Land", content)
    other = admin_client.get(reverse("admin:batchjobs_batchschedule_change", args=[good.pk]))
    assert "Set aside by beat" not in other.content.decode()


def test_the_execution_list_marks_and_filters_set_aside_executions(admin_client):
    job = handler_job("noop")
    kept, set_aside = (
        BatchLog.objects.create(job=job, trigger=Trigger.API, status=ExecutionStatus.COMPLETED)
        for _ in "ab"
    )
    BatchLog.objects.filter(pk=set_aside.pk).update(
        set_aside_at=database_now(), set_aside_reason="IntegrityError: still referred to"
    )
    assert listed(admin_client.get(EXECUTIONS, {"set_aside": "yes"})) == {set_aside.pk}
    assert listed(admin_client.get(EXECUTIONS, {"set_aside": "no"})) == {kept.pk}
    page = admin_client.get(reverse("admin:batchjobs_batchlog_change", args=[set_aside.pk]))
    content = page.content.decode()
    assert "Set aside by housekeeping" in content
    assert "IntegrityError: still referred to" in content
