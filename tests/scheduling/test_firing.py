"""Firing due schedules in-process with an explicit clock: exact counts per misfire policy."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection
from django.db.models import Sum

from batchjobs.execution.publish import Route
from batchjobs.models import BatchLog, BatchSchedule, ExecutionStatus, ScheduleOccurrence, Trigger
from batchjobs.models.set_aside import SET_ASIDE_REASON_CHARS
from batchjobs.scheduling.firing import schedules_fire_due, schedules_next_due
from batchjobs.services.schedules import schedule_create, schedule_save
from tests.support.engines import integer_column_overflow, refuse_rows
from tests.support.factories import handler_job

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
    ("policy", "extra", "runs", "not_run"),
    [
        ("fire_once", {}, 1, "coalesced"),
        ("skip", {}, 0, "missed_skipped"),
        ("catch_up", {"catch_up_window_seconds": 5 * 3600, "catch_up_max": 100}, 5, "dropped"),
        ("catch_up", {"catch_up_window_seconds": 5 * 3600, "catch_up_max": 3}, 3, "dropped"),
    ],
)
def test_misfire_policies_after_ten_hours_down(policy, extra, runs, not_run):
    # given an hourly schedule due at T0, and beat back ten hours and a half later
    schedule = hourly(handler_job("noop"), misfire_policy=policy, **extra)
    now = T0 + timedelta(hours=10, minutes=30)
    # when
    fire_all(now)
    # then
    executions = BatchLog.objects.filter(schedule=schedule)
    assert executions.filter(status=ExecutionStatus.QUEUED).count() == runs
    assert executions.count() == runs  # a skipped fire is an occurrence record, not a SKIPPED run
    # and each of the eleven fires is in the account once: run, or what became of it
    outcomes = dict(
        ScheduleOccurrence.objects.filter(schedule=schedule)
        .values_list("outcome")
        .annotate(fires=Sum("fires"))
    )
    assert outcomes == {"fired": runs, not_run: 11 - runs} if runs else {not_run: 11}
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


# --- one bad row never stops the others (DESIGN.md §4, invariant 11) --------------------------

# Rows that validation refuses, written behind its back, and the error each one raises.
POISONS = {
    "timezone = 'Nowhere/Land'": "ZoneInfoNotFoundError: ",
    "kind = 'cron', cron_expression = '99 99 * * *'": "CroniterBadCronError: ",
}
# Issue #11's schedule: its next fire is past what a datetime holds. The schedule math ends
# such a schedule after its fire; were it to raise instead, the schedule is set aside.
HUGE_INTERVAL = "interval_every = 2147483647, interval_unit = 'hours'"


def poison(schedule: BatchSchedule, assignments: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE batchjobs_batchschedule SET {assignments} WHERE id = %s", [schedule.pk]
        )


def fired_schedules(execution_ids) -> set[int]:
    return set(BatchLog.objects.filter(pk__in=execution_ids).values_list("schedule_id", flat=True))


def test_a_schedule_whose_fire_times_raise_is_set_aside_and_the_others_fire():
    # given good due schedules, with poisoned ones claimed in the same batch
    job = handler_job("noop")
    good = {hourly(job).pk for _ in range(2)}
    poisoned = {}
    for assignments, reason in POISONS.items():
        schedule = hourly(job)
        poison(schedule, assignments)
        poisoned[schedule.pk] = reason
    huge = hourly(job)
    poison(huge, HUGE_INTERVAL)
    good |= {hourly(job).pk for _ in range(2)}
    now = T0 + timedelta(seconds=1)
    # when
    execution_ids = fire_all(now)
    # then every good one fired in that call, and each poisoned one is set aside with its error
    assert fired_schedules(execution_ids) - {huge.pk} == good
    assert not BatchLog.objects.filter(schedule__in=poisoned).exists()
    for schedule in BatchSchedule.objects.filter(pk__in=poisoned):
        assert schedule.set_aside_at == now
        assert schedule.set_aside_reason.startswith(poisoned[schedule.pk])
        assert len(schedule.set_aside_reason) <= SET_ASIDE_REASON_CHARS
        assert (schedule.next_fire_at, schedule.run_count) == (T0, 0)  # not advanced
    for schedule in BatchSchedule.objects.filter(pk__in=good):
        assert (schedule.set_aside_at, schedule.set_aside_reason) == (None, "")
    huge.refresh_from_db()
    assert huge.next_fire_at is None or huge.set_aside_reason.startswith("OverflowError: ")
    # and neither the claim nor beat's sleep looks at them again
    assert schedules_fire_due(now=now + timedelta(seconds=1)).schedules == 0
    assert schedules_next_due() == T0 + timedelta(hours=1)


def test_a_schedule_whose_parameters_cannot_be_merged_is_set_aside_and_the_others_fire():
    # given a job whose parameters are a list (written behind validation's back), and one of
    # its schedules with parameters of its own to merge over them
    job, other_job = handler_job("noop"), handler_job("noop")
    merged = hourly(job, params={"seconds": 1})
    plain, other = hourly(job), hourly(other_job)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE batchjobs_batchjob SET params = '[1, 2]' WHERE id = %s", [job.pk])
    # when
    execution_ids = fire_all(T0 + timedelta(seconds=1))
    # then
    assert fired_schedules(execution_ids) == {plain.pk, other.pk}
    merged.refresh_from_db()
    assert merged.set_aside_reason.startswith("TypeError: ")


def test_saving_a_fixed_schedule_clears_its_set_aside_and_it_fires_again():
    # given a schedule set aside for its unknown time zone
    schedule = hourly(handler_job("noop"))
    poison(schedule, "timezone = 'Nowhere/Land'")
    assert fire_all(T0 + timedelta(seconds=1)) == []
    schedule.refresh_from_db()
    assert schedule.set_aside_at is not None
    # when an operator fixes it and saves it through the service
    schedule.timezone = "Europe/Berlin"
    schedule_save(schedule=schedule, now=T0 + timedelta(minutes=10))
    # then it is live again, due at its next fire, and fires
    schedule.refresh_from_db()
    assert (schedule.set_aside_at, schedule.set_aside_reason) == (None, "")
    assert schedule.next_fire_at == T0 + timedelta(hours=1)
    assert fired_schedules(fire_all(T0 + timedelta(hours=1, seconds=1))) == {schedule.pk}


def test_saving_a_set_aside_schedule_unchanged_makes_it_due_again():
    # given a schedule set aside by an error that is gone since (a fixed bug, say): here the
    # reason is written by hand, as beat would have
    schedule = hourly(handler_job("noop"))
    BatchSchedule.objects.filter(pk=schedule.pk).update(
        set_aside_at=T0, set_aside_reason="RuntimeError: gone since"
    )
    assert fire_all(T0 + timedelta(seconds=1)) == []
    # when it is saved as it is
    schedule.refresh_from_db()
    schedule_save(schedule=schedule, now=T0 + timedelta(minutes=10))
    # then its next fire is computed again and it fires
    schedule.refresh_from_db()
    assert (schedule.set_aside_at, schedule.next_fire_at) == (None, T0 + timedelta(hours=1))
    assert fired_schedules(fire_all(T0 + timedelta(hours=1, seconds=1))) == {schedule.pk}


def test_a_schedule_whose_execution_the_database_refuses_is_set_aside_and_the_others_fire():
    # given eight due schedules, and a database that refuses one's execution row (a trigger
    # stands for any row-level refusal: the whole INSERT statement fails)
    job = handler_job("noop")
    schedules = [hourly(job) for _ in range(8)]
    refused = schedules[5]
    refuse_rows(
        name="test_refuses_one", table="batchjobs_batchlog", where=f"NEW.schedule_id = {refused.pk}"
    )
    # when
    execution_ids = fire_all(T0 + timedelta(seconds=1))
    # then the seven others fired in the same call, and the refused one is set aside
    assert fired_schedules(execution_ids) == {s.pk for s in schedules} - {refused.pk}
    refused.refresh_from_db()
    assert refused.set_aside_reason == "IntegrityError: test_refuses_one"
    assert refused.next_fire_at == T0


def test_a_database_that_refuses_every_row_sets_nothing_aside():
    # given due schedules, and a database that refuses every execution row: its own fault
    for _ in range(3):
        hourly(handler_job("noop"))
    refuse_rows(
        name="test_refuses_all", table="batchjobs_batchlog", where="NEW.schedule_id IS NOT NULL"
    )
    # when / then the batch fails (beat retries it), and no schedule is set aside or moved
    with pytest.raises(IntegrityError):
        schedules_fire_due(now=T0 + timedelta(seconds=1))
    assert not BatchSchedule.objects.filter(set_aside_at__isnull=False).exists()
    assert set(BatchSchedule.objects.values_list("next_fire_at", flat=True)) == {T0}


def test_a_schedule_whose_advance_the_database_refuses_is_set_aside_and_the_others_fire():
    # given a schedule whose run count is at its column's limit: one more fire overflows it
    job = handler_job("noop")
    schedules = [hourly(job) for _ in range(3)]
    full = schedules[0]
    limit, overflow = integer_column_overflow()
    BatchSchedule.objects.filter(pk=full.pk).update(run_count=limit)
    # when
    execution_ids = fire_all(T0 + timedelta(seconds=1))
    # then the others fired and advanced, and the full one neither fired nor moved
    assert fired_schedules(execution_ids) == {s.pk for s in schedules[1:]}
    full.refresh_from_db()
    assert full.set_aside_reason == overflow
    assert (full.next_fire_at, full.run_count) == (T0, limit)
    assert not BatchLog.objects.filter(schedule=full).exists()
