"""The scheduler in real beat processes: exactly once with two beats, one killed; edits take
effect within a second; misfire policies after downtime, each fire in the account of
occurrences once."""

import signal
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Count, Sum
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from batchjobs.models import BatchLog, BatchSchedule, ExecutionStatus, ScheduleOccurrence
from batchjobs.models.clock import database_now
from batchjobs.scheduling.fire_times import Timing, fires_between
from batchjobs.services.schedules import schedule_create
from tests.support.engines import integer_column_overflow
from tests.support.factories import handler_job
from tests.support.processes import queue_purge, start_beat, wait_until

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.integration]


@pytest.fixture(autouse=True)
def purge_fired_messages():
    """No worker consumes these tests' thousands of fires: leave no backlog to later tests."""
    yield
    queue_purge()


def test_two_beats_one_killed_fire_every_fire_exactly_once():
    # given 120 schedules firing every 1-3 s, as intervals and 6-field crons
    job = handler_job("noop", enabled=True)
    schedules = []
    for index in range(120):
        if index % 2:
            schedules.append(
                schedule_create(
                    job=job, kind="interval", interval_every=1 + index % 3, interval_unit="seconds"
                )
            )
        else:
            schedules.append(
                schedule_create(
                    job=job, kind="cron", cron_expression=f"*/{1 + index % 3} * * * * *"
                )
            )
    started = database_now()
    first, second = start_beat(), start_beat()
    try:
        # when one beat is killed mid-run and the other carries on
        time.sleep(25)
        first.kill(signal.SIGKILL)
        time.sleep(20)
        BatchSchedule.objects.update(paused=True)
        stopped = database_now()
        time.sleep(2)  # let a batch in flight commit
    finally:
        first.stop()
        second.stop()
    # then every expected fire in the window has exactly one execution
    duplicates = (
        BatchLog.objects.values("schedule", "scheduled_for").annotate(n=Count("id")).filter(n__gt=1)
    )
    assert not duplicates.exists()
    missing = {}
    for schedule in schedules:
        schedule.refresh_from_db()
        expected = fires_between(Timing.of(schedule), started + timedelta(seconds=2),
                                 stopped - timedelta(seconds=2), limit=1000)  # fmt: skip
        actual = set(
            BatchLog.objects.filter(schedule=schedule).values_list("scheduled_for", flat=True)
        )
        if set(expected) - actual:
            missing[schedule.pk] = sorted(set(expected) - actual)[:3]
    assert not missing, f"fires lost: {missing}"
    assert BatchLog.objects.count() > 120 * 40 / 3


def test_a_new_schedule_fires_within_a_second_while_beat_sleeps():
    job = handler_job("noop")
    schedule_create(job=job, kind="cron", cron_expression="0 0 1 1 *")  # beat sleeps long
    beat = start_beat()
    try:
        time.sleep(2)
        lags = []
        for _ in range(3):
            created = database_now()
            schedule = schedule_create(job=job, delay_seconds=0.3)
            execution = wait_until(
                lambda s=schedule: BatchLog.objects.filter(schedule=s).first(), timeout=10
            )
            lags.append((execution.created_at - created).total_seconds())
    finally:
        beat.stop()
    assert max(lags) <= 1.0, lags


def test_beat_back_after_ten_minutes_applies_each_misfire_policy_exactly():
    # given three every-minute schedules whose last fire was ten minutes ago
    job = handler_job("noop")
    now = database_now()
    counts = {}
    for policy in ("fire_once", "skip", "catch_up"):
        schedule = schedule_create(
            job=job, kind="interval", interval_every=1, interval_unit="minutes",
            start_at=now - timedelta(minutes=10, seconds=30), misfire_policy=policy,
            misfire_grace_seconds=10, catch_up_window_seconds=300, catch_up_max=100,
        )  # fmt: skip
        BatchSchedule.objects.filter(pk=schedule.pk).update(
            next_fire_at=now - timedelta(minutes=10, seconds=30)
        )
        counts[policy] = schedule
    # when beat comes back
    beat = start_beat()
    try:
        wait_until(
            lambda: not BatchSchedule.objects.filter(next_fire_at__lte=database_now()).exists(),
            timeout=20,
        )
    finally:
        beat.stop()
    # then: one coalesced run; none; the 5 fires of the last 5 minutes
    result = {
        policy: Counter(BatchLog.objects.filter(schedule=schedule).values_list("status", flat=True))
        for policy, schedule in counts.items()
    }
    # (a worker left running by another test may already have run them: count runs, not QUEUED)
    runs = {policy: sum(n for status, n in counts.items() if status != ExecutionStatus.SKIPPED)
            for policy, counts in result.items()}  # fmt: skip
    skipped = {policy: counts[ExecutionStatus.SKIPPED] for policy, counts in result.items()}
    assert runs == {"fire_once": 1, "skip": 0, "catch_up": 5}
    assert skipped == {"fire_once": 0, "skip": 0, "catch_up": 0}  # skipped fires are records
    # and each schedule's occurrence records account for its 11 missed fires, once each
    accounts = {
        policy: dict(
            ScheduleOccurrence.objects.filter(schedule=schedule)
            .values_list("outcome")
            .annotate(fires=Sum("fires"))
        )
        for policy, schedule in counts.items()
    }
    assert accounts == {
        "fire_once": {"fired": 1, "coalesced": 10},
        "skip": {"missed_skipped": 11},
        "catch_up": {"fired": 5, "dropped": 6},
    }


def test_poisoned_schedules_are_set_aside_and_the_others_keep_firing():
    # given a control schedule due every second, and schedules stored behind validation's
    # back: an unknown zone, a cron out of range, and a run count one fire would overflow
    job = handler_job("noop")
    control = schedule_create(job=job, kind="interval", interval_every=1, interval_unit="seconds")
    run_count_limit, overflow = integer_column_overflow()
    poisons = {
        "timezone = 'Nowhere/Land'": "ZoneInfoNotFoundError: ",
        "kind = 'cron', cron_expression = '99 99 * * *'": "CroniterBadCronError: ",
        f"run_count = {run_count_limit}": overflow,
    }
    poisoned = {}
    for assignments, reason in poisons.items():
        # Created paused: a beat left running by another test must not fire it before the
        # poison is in place; the same UPDATE resumes it.
        schedule = schedule_create(job=job, kind="interval", interval_every=1, paused=True)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE batchjobs_batchschedule SET {assignments}, next_fire_at = start_at, "
                "paused = false WHERE id = %s",
                [schedule.pk],
            )
        poisoned[schedule.pk] = reason
    # when beat runs
    beat = start_beat()
    try:
        wait_until(
            lambda: BatchLog.objects.filter(schedule=control).count() >= 3,
            timeout=20,
            message="the control schedule stopped firing",
        )
        fired_from = database_now()
        set_aside_first = _set_aside_times(poisoned)
        time.sleep(3)
        fired_since = BatchLog.objects.filter(schedule=control, created_at__gte=fired_from)
        fires = fired_since.count()
        set_aside_later = _set_aside_times(poisoned)
    finally:
        beat.stop()
    # then the control kept firing every second, and each poisoned schedule is set aside
    assert fires >= 2
    for schedule in BatchSchedule.objects.filter(pk__in=poisoned):
        assert schedule.set_aside_reason.startswith(poisoned[schedule.pk]), schedule
        assert not BatchLog.objects.filter(schedule=schedule).exists()
    # each set aside once, never claimed again (a re-claim would stamp it anew); which beat
    # set it aside does not matter: another test's beat may still be running
    assert set_aside_later == set_aside_first
    assert None not in set_aside_first.values()
    assert "beat firing failed" not in beat.log()  # no batch rolled back


def _set_aside_times(schedule_ids) -> dict:
    return dict(BatchSchedule.objects.filter(pk__in=schedule_ids).values_list("pk", "set_aside_at"))


def test_a_periodic_task_whose_schedule_raises_is_skipped_and_the_others_run():
    # given a housekeeping-style periodic task every second, and one whose interval, stored
    # behind validation's back, is past what a timedelta holds
    every_second = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS)
    too_long = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.DAYS)
    IntervalSchedule.objects.filter(pk=too_long.pk).update(every=2**31 - 1)
    PeriodicTask.objects.create(
        name="test: too long", task="celery.backend_cleanup", interval=too_long
    )
    PeriodicTask.objects.create(
        name="test: control", task="celery.backend_cleanup", interval=every_second
    )
    job = handler_job("noop")
    control = schedule_create(job=job, kind="interval", interval_every=1, interval_unit="seconds")
    # when beat runs
    beat = start_beat()
    try:
        beat.wait_for_log("Sending due task test: control", timeout=20)
        wait_until(lambda: BatchLog.objects.filter(schedule=control).count() >= 3, timeout=20)
    finally:
        beat.stop()
    # then it kept running, firing schedules and the periodic tasks that can be computed
    assert beat.popen.returncode in (0, -signal.SIGTERM)
    assert "periodic task 'test: too long' skipped" in beat.log()
