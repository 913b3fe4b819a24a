"""The account of occurrences: every nominal fire of a schedule is in its records once, with
what became of it (beat's fire, an outage under each misfire policy, a pause, the overlap
policy, calendars, a disabled job, max runs, a fire key already taken)."""

from datetime import UTC, datetime, timedelta

import pytest

from batchjobs.errors import InvalidInput
from batchjobs.execution.lifecycle import execution_claim, executions_due_for_publish
from batchjobs.models import (
    BatchLog,
    BatchSchedule,
    Calendar,
    CalendarPolicy,
    ExecutionStatus,
    OccurrenceOutcome,
    ScheduleOccurrence,
)
from batchjobs.models.clock import database_now
from batchjobs.scheduling.fire_times import Timing, fires_between
from batchjobs.scheduling.firing import schedules_fire_due
from batchjobs.scheduling.occurrences import OCCURRENCE_ROWS_PER_EVENT
from batchjobs.selectors.occurrences import occurrence_account, occurrence_list
from batchjobs.services.schedules import (
    schedule_create,
    schedule_pause,
    schedule_resume,
    schedule_update,
)
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
ONE_US = timedelta(microseconds=1)


def interval(job, every=10, unit="minutes", **fields):
    """Every `every` `unit` from T0, as if created at T0."""
    schedule = schedule_create(
        job=job, kind="interval", interval_every=every, interval_unit=unit, start_at=T0, **fields
    )
    BatchSchedule.objects.filter(pk=schedule.pk).update(next_fire_at=T0)
    schedule.refresh_from_db()
    return schedule


def fire_all(now):
    routes = {}
    while (batch := schedules_fire_due(now=now)).schedules:
        routes |= batch.routes
    return routes


def accounted(schedule, since, until):
    """Check that every nominal fire in [since, until] is in exactly one record (a run row
    stands for the fires it says), and return the fires per outcome in the window."""
    timing = Timing.of(schedule)
    nominal = fires_between(timing, since - ONE_US, until, limit=1_000_000)
    covered = []
    for row in ScheduleOccurrence.objects.filter(schedule=schedule):
        if row.fires == 1:
            covered.append(row.scheduled_for)
            continue
        run = fires_between(timing, row.scheduled_for - ONE_US, row.last_scheduled_for, limit=10**6)
        assert len(run) == row.fires, row
        covered += run
    assert sorted(fire for fire in covered if since <= fire <= until) == nominal
    account = occurrence_account(schedule_id=schedule.pk, since=since, until=until)
    assert sum(account.values()) == len(nominal)
    return {outcome: fires for outcome, fires in account.items() if fires}


def test_after_a_beat_outage_and_a_paused_hour_every_fire_is_accounted_once():
    # given a schedule every 10 minutes (misfire policy skip, 60 s grace), fired on time twice
    schedule = interval(handler_job("noop"), misfire_policy="skip")
    fire_all(T0 + timedelta(seconds=1))
    fire_all(T0 + timedelta(minutes=10, seconds=1))
    # when beat is down from :20 to 1:00, then the schedule is paused from 1:05 to 2:05
    fire_all(T0 + timedelta(hours=1, seconds=1))
    schedule_pause(schedule=schedule, now=T0 + timedelta(hours=1, minutes=5))
    assert fire_all(T0 + timedelta(hours=1, minutes=30)) == {}  # paused: beat passes it by
    schedule.refresh_from_db()
    assert schedule.paused_at == T0 + timedelta(hours=1, minutes=5)
    schedule_resume(schedule=schedule, now=T0 + timedelta(hours=2, minutes=5))
    fire_all(T0 + timedelta(hours=2, minutes=10, seconds=1))
    # then the 14 fires from 0:00 to 2:10 are each in the account once
    assert accounted(schedule, T0, T0 + timedelta(hours=2, minutes=10)) == {
        "fired": 4, "missed_skipped": 4, "paused": 6,
    }  # fmt: skip
    schedule.refresh_from_db()
    assert schedule.paused_at is None
    assert schedule.next_fire_at == T0 + timedelta(hours=2, minutes=20)
    # no SKIPPED execution stands for the missed fires; each run knows its period
    executions = BatchLog.objects.filter(schedule=schedule).order_by("scheduled_for")
    assert [e.status for e in executions] == [ExecutionStatus.QUEUED] * 4
    after_outage, after_pause = executions[2], executions[3]
    assert (after_outage.logical_time, after_outage.data_interval_start) == (
        T0 + timedelta(hours=1), T0 + timedelta(minutes=50),
    )  # fmt: skip
    assert after_pause.data_interval_start == T0 + timedelta(hours=2)
    assert after_pause.data_interval_end == after_pause.scheduled_for
    # and the records read back by outcome and window
    paused = occurrence_list(
        schedule_id=schedule.pk, outcomes=["paused"], since=T0 + timedelta(hours=2)
    )
    assert [row.scheduled_for for row in paused] == [T0 + timedelta(hours=2)]
    assert "paused from" in paused[0].reason


def test_a_long_outage_of_a_schedule_every_second_is_a_bounded_number_of_rows():
    # given a schedule every second, and beat back three hours later: 10,801 fires, more than
    # the 10,000 listed in one pass
    schedule = interval(handler_job("noop"), every=1, unit="seconds", misfire_policy="skip")
    now = T0 + timedelta(hours=3)
    # when
    fire_all(now)
    # then every fire is accounted for (those of the last minute, the grace, ran), in a
    # bounded number of rows
    assert accounted(schedule, T0, now) == {"fired": 60, "missed_skipped": 10_741}
    assert ScheduleOccurrence.objects.filter(schedule=schedule).count() <= (
        OCCURRENCE_ROWS_PER_EVENT + 3
    )


def test_misfire_fire_once_coalesces_the_missed_fires_into_the_run():
    schedule = interval(handler_job("noop"), misfire_policy="fire_once")
    fire_all(T0 + timedelta(minutes=30, seconds=90))
    run = BatchLog.objects.get(schedule=schedule)
    assert accounted(schedule, T0, T0 + timedelta(minutes=30)) == {"fired": 1, "coalesced": 3}
    coalesced = ScheduleOccurrence.objects.filter(schedule=schedule, outcome="coalesced")
    assert {row.execution_id for row in coalesced} == {run.pk}
    assert all(f"#{run.pk}" in row.reason for row in coalesced)


def test_catch_up_records_the_fires_outside_its_window_and_over_its_cap_as_dropped():
    schedule = interval(
        handler_job("noop"), misfire_policy="catch_up", catch_up_window_seconds=1800,
        catch_up_max=2,
    )  # fmt: skip
    fire_all(T0 + timedelta(hours=1, seconds=90))  # 0:00 .. 1:00 all late
    assert accounted(schedule, T0, T0 + timedelta(hours=1)) == {"fired": 2, "dropped": 5}
    reasons = set(
        ScheduleOccurrence.objects.filter(schedule=schedule, outcome="dropped").values_list(
            "reason", flat=True
        )
    )
    assert any("window" in reason for reason in reasons)
    assert any("cap of 2" in reason for reason in reasons)


def test_a_disabled_job_and_max_runs_are_recorded():
    disabled = interval(handler_job("noop", enabled=False))
    capped = interval(
        handler_job("noop"), max_runs=2, misfire_policy="catch_up",
        catch_up_window_seconds=24 * 3600,
    )  # fmt: skip
    fire_all(T0 + timedelta(minutes=40, seconds=1))
    assert accounted(disabled, T0, T0 + timedelta(minutes=40)) == {"job_disabled": 5}
    assert accounted(capped, T0, T0 + timedelta(minutes=40)) == {"fired": 2, "over_max_runs": 3}
    assert not BatchLog.objects.filter(schedule=disabled).exists()


def test_a_fire_whose_execution_exists_is_recorded_deduplicated_with_it():
    # given a fire made, whose record is gone, fired again (as by a racing beat)
    schedule = interval(handler_job("noop"))
    fire_all(T0 + timedelta(seconds=1))
    execution = BatchLog.objects.get(schedule=schedule)
    ScheduleOccurrence.objects.filter(schedule=schedule).delete()
    BatchSchedule.objects.filter(pk=schedule.pk).update(next_fire_at=T0)
    # when
    routes = fire_all(T0 + timedelta(seconds=2))
    # then nothing new runs, and the record names the execution already there
    assert routes == {}
    row = ScheduleOccurrence.objects.get(schedule=schedule)
    assert (row.outcome, row.execution_id) == ("deduplicated", execution.pk)


# A worker claims outside any transaction: the refused claim must not abort the test's.
@pytest.mark.django_db(transaction=True)
def test_a_run_the_overlap_policy_skips_is_recorded_skipped_overlap(session_beat_paused):
    # given two runs of a job whose overlap policy is skip, fired together by catch_up
    job = handler_job("noop", overlap_policy="skip")
    schedule = interval(
        job, misfire_policy="catch_up", catch_up_window_seconds=3600, catch_up_max=10
    )
    fire_all(T0 + timedelta(minutes=10, seconds=1))
    first, second = BatchLog.objects.filter(schedule=schedule).order_by("scheduled_for")
    # when the first runs and a worker takes the second
    assert execution_claim(execution_id=first.pk, worker="w1", task_id="t1") is not None
    assert execution_claim(execution_id=second.pk, worker="w2", task_id="t2") is None
    # then the second is SKIPPED, and so says its fire's record
    second.refresh_from_db()
    assert second.status == ExecutionStatus.SKIPPED
    row = ScheduleOccurrence.objects.get(execution=second)
    assert row.outcome == OccurrenceOutcome.SKIPPED_OVERLAP
    assert row.reason == second.error
    assert accounted(schedule, T0, T0 + timedelta(minutes=10)) == {
        "fired": 1, "skipped_overlap": 1,
    }  # fmt: skip


def calendar_on(schedule, policy, day):
    calendar = Calendar.objects.create(name=f"closed-{schedule.pk}", excluded_dates=[day])
    schedule.calendars.add(calendar)
    BatchSchedule.objects.filter(pk=schedule.pk).update(calendar_policy=policy)


def test_a_calendar_excludes_or_moves_a_fire_and_the_moved_run_waits_for_its_day():
    # given two daily schedules due now, whose calendars exclude today, one skipping and one
    # moving the fire
    now = database_now()
    today = now.date().isoformat()
    skipping = interval(handler_job("noop"), every=1, unit="days")
    moving = interval(handler_job("noop"), every=1, unit="days")
    calendar_on(skipping, CalendarPolicy.SKIP, today)
    calendar_on(moving, CalendarPolicy.MOVE, today)
    due = now - timedelta(seconds=1)
    BatchSchedule.objects.filter(pk__in=[skipping.pk, moving.pk]).update(
        start_at=due, next_fire_at=due
    )
    # when
    routes = fire_all(now)
    # then the skipped fire is excluded, with no execution
    excluded = ScheduleOccurrence.objects.get(schedule=skipping)
    assert (excluded.outcome, excluded.execution_id) == ("excluded", None)
    assert today in excluded.reason
    assert not BatchLog.objects.filter(schedule=skipping).exists()
    # and the moved one has its execution, under the nominal fire's key, waiting for tomorrow
    moved = ScheduleOccurrence.objects.get(schedule=moving)
    execution = BatchLog.objects.get(schedule=moving)
    assert (moved.outcome, moved.execution_id) == ("moved", execution.pk)
    assert execution.scheduled_for == execution.logical_time == due
    assert execution.next_attempt_at == moved.due_at == due + timedelta(days=1)
    assert execution.status == ExecutionStatus.QUEUED
    assert execution.pk not in routes  # not published by beat,
    assert execution.pk not in executions_due_for_publish()  # nor by the relay before its day
    BatchLog.objects.filter(pk=execution.pk).update(next_attempt_at=now - ONE_US)
    assert execution.pk in executions_due_for_publish()  # and by the relay once it comes


def test_a_resume_with_no_fire_missed_leaves_the_next_fire():
    schedule = interval(handler_job("noop"))
    schedule_pause(schedule=schedule, now=T0 - 5 * MINUTE)
    schedule_resume(schedule=schedule, now=T0 - MINUTE)
    schedule.refresh_from_db()
    assert (schedule.paused, schedule.paused_at, schedule.next_fire_at) == (False, None, T0)
    assert not ScheduleOccurrence.objects.filter(schedule=schedule).exists()


def test_a_timing_change_clears_the_previous_fire():
    schedule = interval(handler_job("noop"))
    fire_all(T0 + timedelta(seconds=1))
    schedule.refresh_from_db()
    assert schedule.previous_fire_at == T0
    schedule_update(schedule=schedule, interval_every=15)
    schedule.refresh_from_db()
    assert schedule.previous_fire_at is None


def test_the_list_refuses_an_unknown_outcome_and_a_window_backwards():
    schedule = interval(handler_job("noop"))
    with pytest.raises(InvalidInput) as unknown:
        list(occurrence_list(schedule_id=schedule.pk, outcomes=["lost"]))
    assert "outcome" in unknown.value.field_errors
    with pytest.raises(InvalidInput) as backwards:
        list(occurrence_list(schedule_id=schedule.pk, since=T0, until=T0 - MINUTE))
    assert "until" in backwards.value.field_errors
