"""Rows set aside (DESIGN.md §4, invariant 11) through the API: their fields, and a filter on
the schedule and execution lists."""

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

SCHEDULES = reverse("api:schedule-list")
EXECUTIONS = reverse("api:execution-list")


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_a_schedule_beat_set_aside_is_listed_with_its_reason(api):
    # given two due schedules, one with a time zone stored behind validation's back
    job = handler_job("noop")
    good, bad = (schedule_create(job=job, kind="interval", interval_every=1) for _ in "ab")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE batchjobs_batchschedule SET timezone = 'Nowhere/Land' WHERE id = %s", [bad.pk]
        )
    BatchSchedule.objects.update(next_fire_at=database_now() - timedelta(seconds=1))
    # when beat fires them
    schedules_fire_due()
    # then
    client = api("reader")
    assert ids(client.get(SCHEDULES, {"set_aside": "true"})) == {bad.pk}
    assert ids(client.get(SCHEDULES, {"set_aside": "false"})) == {good.pk}
    assert ids(client.get(SCHEDULES)) == {good.pk, bad.pk}
    shown = client.get(reverse("api:schedule-detail", args=[bad.pk])).json()
    assert shown["set_aside_at"] is not None
    assert shown["set_aside_reason"].startswith("ZoneInfoNotFoundError: ")


def test_executions_set_aside_are_filtered(api):
    job = handler_job("noop")
    kept, set_aside = (
        BatchLog.objects.create(job=job, trigger=Trigger.API, status=ExecutionStatus.COMPLETED)
        for _ in "ab"
    )
    BatchLog.objects.filter(pk=set_aside.pk).update(
        set_aside_at=database_now(), set_aside_reason="IntegrityError: still referred to"
    )
    client = api("reader")
    assert ids(client.get(EXECUTIONS, {"set_aside": "true"})) == {set_aside.pk}
    assert ids(client.get(EXECUTIONS, {"set_aside": "false"})) == {kept.pk}
    listed = client.get(EXECUTIONS, {"set_aside": "true"}).json()["results"]
    assert listed[0]["set_aside_reason"] == "IntegrityError: still referred to"


@pytest.mark.parametrize("url", [SCHEDULES, EXECUTIONS])
def test_a_set_aside_filter_that_is_not_a_boolean_is_a_400_naming_it(api, url):
    response = api("reader").get(url, {"set_aside": "maybe"})
    assert response.status_code == 400
    assert response.json()["errors"]["set_aside"] == ["Enter true or false."]
