"""Firing due schedules in-process with an explicit clock: exact counts per misfire policy."""

from datetime import UTC, datetime, timedelta

import pytest

from batchjobs.execution.publish import Route
from batchjobs.models import BatchLog, BatchSchedule, ExecutionStatus, Trigger
from batchjobs.scheduling.firing import schedules_fire_due
from batchjobs.services.schedules import schedule_create
from tests.factories import handler_job

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)


def hourly(job, **fields):
    """Every hour at :00:30 from T0 (anchor), as if created at T0."""
    schedule = schedule_create(
        job=job, kind="interval", interval_every=1, interval_unit="hours", start_at=T0, **fields
    )
    BatchSchedule.objects.filter(pk=schedule.pk).update(next_fire_at=T0)
    schedule.refresh_from_db()
    return schedule


def fire_all(now):
    created = []
    while (batch := schedules_fire_due(now=now)).schedules:
        created += batch.execution_ids
    return created


def test_an_on_time_fire_creates_one_execution_and_advances():
    schedule = hourly(handler_job("noop"))
    ids = fire_all(T0 + timedelta(seconds=1))
    execution = BatchLog.objects.get(pk__in=ids)
    assert (execution.trigger, execution.scheduled_for) == (Trigger.SCHEDULE, T0)
    assert execution.status == ExecutionStatus.QUEUED
    schedule.refresh_from_db()
    assert schedule.next_fire_at == T0 + timedelta(hours=1)
    assert (schedule.run_count, schedule.last_fire_at) == (1, T0)
    assert fire_all(T0 + timedelta(seconds=2)) == []


def test_firing_twice_at_the_same_instant_creates_nothing_more():
    schedule = hourly(handler_job("noop"))
    fire_all(T0 + timedelta(seconds=1))
    BatchSchedule.objects.filter(pk=schedule.pk).update(next_fire_at=T0)  # as a racing beat
    assert fire_all(T0 + timedelta(seconds=1)) == []
    assert BatchLog.objects.filter(schedule=schedule).count() == 1


@pytest.mark.parametrize(
    ("policy", "extra", "runs", "skipped"),
    [
        ("fire_once", {}, 1, 0),
        ("skip", {}, 0, 1),
        ("catch_up", {"catch_up_window_seconds": 5 * 3600, "catch_up_max": 100}, 5, 0),
        ("catch_up", {"catch_up_window_seconds": 5 * 3600, "catch_up_max": 3}, 3, 0),
    ],
)
def test_misfire_policies_after_ten_hours_down(policy, extra, runs, skipped):
    # given an hourly schedule due at T0, and beat back ten hours and a half later
    schedule = hourly(handler_job("noop"), misfire_policy=policy, **extra)
    now = T0 + timedelta(hours=10, minutes=30)
    # when
    fire_all(now)
    # then
    executions = BatchLog.objects.filter(schedule=schedule)
    assert executions.filter(status=ExecutionStatus.QUEUED).count() == runs
    assert executions.filter(status=ExecutionStatus.SKIPPED).count() == skipped
    schedule.refresh_from_db()
    assert schedule.next_fire_at == T0 + timedelta(hours=11)
    assert schedule.run_count == runs
    if policy == "catch_up":
        fires = sorted(executions.values_list("scheduled_for", flat=True))
        assert fires[-1] == T0 + timedelta(hours=10)
        assert all(now - fire <= timedelta(hours=5) for fire in fires)
    if policy == "fire_once":
        assert "11 missed fire(s)" in executions.get().note


def test_max_runs_stops_the_schedule():
    schedule = hourly(
        handler_job("noop"),
        max_runs=2,
        misfire_policy="catch_up",
        catch_up_window_seconds=24 * 3600,
    )
    fire_all(T0 + timedelta(hours=5))
    schedule.refresh_from_db()
    assert BatchLog.objects.filter(schedule=schedule).count() == 2
    assert schedule.next_fire_at is None


def test_a_disabled_jobs_schedule_moves_on_without_firing():
    job = handler_job("noop", enabled=False)
    schedule = hourly(job)
    fire_all(T0 + timedelta(seconds=1))
    schedule.refresh_from_db()
    assert not BatchLog.objects.exists()
    assert schedule.next_fire_at == T0 + timedelta(hours=1)


def test_a_paused_schedule_is_not_fired():
    schedule = hourly(handler_job("noop"))
    BatchSchedule.objects.filter(pk=schedule.pk).update(paused=True)
    assert fire_all(T0 + timedelta(seconds=1)) == []
    assert not BatchLog.objects.exists()


def test_once_schedule_fires_once_then_finishes():
    job = handler_job("noop")
    schedule = schedule_create(job=job, delay_seconds=0)
    fire_all(schedule.next_fire_at + timedelta(seconds=1))
    schedule.refresh_from_db()
    assert BatchLog.objects.filter(schedule=schedule).count() == 1
    assert schedule.next_fire_at is None


def test_schedule_params_override_job_params():
    job = handler_job("sleep", params={"seconds": 5})
    schedule = hourly(job, params={"seconds": 1})
    [execution_id] = fire_all(T0 + timedelta(seconds=1))
    assert BatchLog.objects.get(pk=execution_id).params == {"seconds": 1}
    assert schedule.pk


def test_schedules_without_params_share_their_jobs_params():
    job = handler_job("sleep", params={"seconds": 5})
    first, second = hourly(job), hourly(job, params={"seconds": 2})
    third = hourly(job)
    fire_all(T0 + timedelta(seconds=1))
    params = dict(BatchLog.objects.values_list("schedule_id", "params"))
    assert params == {first.pk: {"seconds": 5}, second.pk: {"seconds": 2}, third.pk: {"seconds": 5}}


def test_a_fired_batch_carries_each_executions_route_from_the_claim():
    urgent = handler_job("noop", queue="urgent", priority=1, timeout_seconds=12)
    bulk = handler_job("noop", queue="bulk", priority=8, timeout_seconds=600)
    hourly(urgent), hourly(bulk)
    batch = schedules_fire_due(now=T0 + timedelta(seconds=1))
    assert sorted(batch.execution_ids) == sorted(batch.routes)
    by_job = dict(BatchLog.objects.filter(pk__in=batch.execution_ids).values_list("pk", "job_id"))
    assert {by_job[pk]: route for pk, route in batch.routes.items()} == {
        urgent.pk: Route(queue="urgent", priority=1, timeout_seconds=12.0),
        bulk.pk: Route(queue="bulk", priority=8, timeout_seconds=600.0),
    }


def test_a_batch_is_capped_and_the_rest_fire_in_the_next():
    job = handler_job("noop")
    schedules = [hourly(job) for _ in range(5)]
    first = schedules_fire_due(now=T0 + timedelta(seconds=1), batch_size=3)
    second = schedules_fire_due(now=T0 + timedelta(seconds=1), batch_size=3)
    assert (first.schedules, second.schedules) == (3, 2)
    assert BatchLog.objects.filter(schedule__in=schedules).count() == 5
    assert schedules_fire_due(now=T0 + timedelta(seconds=1)).schedules == 0
