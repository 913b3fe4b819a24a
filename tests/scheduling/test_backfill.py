"""The backfill driver and service in-process, with the database clock of now: dry runs, the
fire key shared with beat, the concurrency cap, pause/resume/cancel, completion, occurrences."""

import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, connections

from batchjobs.models import (
    AuditEntry,
    Backfill,
    BackfillStatus,
    BatchLog,
    Calendar,
    CalendarPolicy,
    ExecutionStatus,
    OccurrenceOutcome,
    ScheduleOccurrence,
    Trigger,
)
from batchjobs.models.clock import database_now
from batchjobs.models.execution import ACTIVE_STATUSES
from batchjobs.scheduling.backfill import (
    FIRES_COUNTED_EXACTLY,
    backfill_execution_ended,
    backfill_fires_counted,
    backfill_top_up,
    backfills_top_up,
)
from batchjobs.scheduling.fire_times import Timing
from batchjobs.scheduling.firing import schedules_fire_due
from batchjobs.scheduling.occurrences import Occurrence, occurrences_record
from batchjobs.selectors.backfills import (
    backfill_get,
    backfill_progress_text,
    backfill_total_estimated,
)
from batchjobs.services.backfills import (
    DryRun,
    backfill_cancel,
    backfill_create,
    backfill_pause,
    backfill_resume,
)
from batchjobs.services.schedules import schedule_create
from tests.support.factories import handler_job
from tests.support.runs import IN_PROCESS_QUEUE

pytestmark = pytest.mark.django_db

SEOUL = ZoneInfo("Asia/Seoul")
BERLIN = ZoneInfo("Europe/Berlin")


def cron(expression: str, zone: str = "UTC", handler: str = "noop", **fields):
    job = handler_job(handler, queue=IN_PROCESS_QUEUE, **fields)
    return schedule_create(job=job, kind="cron", cron_expression=expression, timezone=zone)


def end_all(backfill: Backfill, status: str = ExecutionStatus.COMPLETED) -> int:
    """End the backfill's active runs as a worker would (the hook's part is tested apart)."""
    return BatchLog.objects.filter(backfill=backfill, status__in=ACTIVE_STATUSES).update(
        status=status
    )


def test_dry_run_lists_the_nominal_fires_in_the_schedules_zone_and_saves_nothing():
    # given every six hours in Seoul, over three local days
    schedule = cron("0 */6 * * *", "Asia/Seoul")
    start = datetime(2026, 11, 1, 0, 0, tzinfo=SEOUL)
    # when
    preview = backfill_create(
        schedule=schedule.pk, range_start=start, range_end=start + timedelta(days=2, hours=18),
        max_concurrency=2, params={}, confirm=False, dry_run=True, user=None,
    )  # fmt: skip
    # then 00, 06, 12, 18 local on each of the three days, the range's ends included
    assert isinstance(preview, DryRun)
    expected = [start + timedelta(hours=6 * n) for n in range(12)]
    assert [item.fire for item in preview.fires] == expected
    assert preview.fires[0].fire.astimezone(UTC) == datetime(2026, 10, 31, 15, tzinfo=UTC)
    assert (preview.total, preview.needs_confirm, preview.existing) == (12, False, 0)
    assert not Backfill.objects.exists()
    assert not BatchLog.objects.exists()
    assert not AuditEntry.objects.filter(object_repr__startswith="backfill").exists()


def test_dry_run_follows_dst_a_naive_range_read_in_the_schedules_zone():
    # given hourly in Berlin over the fall-back day, and 02:30 daily over the spring-forward
    hourly = cron("0 * * * *", "Europe/Berlin")
    daily = cron("30 2 * * *", "Europe/Berlin")
    # when
    fall = backfill_create(
        schedule=hourly, range_start=datetime(2026, 10, 25, 0, 0),
        range_end=datetime(2026, 10, 25, 23, 0), dry_run=True,
    )  # fmt: skip
    spring = backfill_create(
        schedule=daily, range_start=datetime(2026, 3, 28), range_end=datetime(2026, 3, 31),
        dry_run=True,
    )  # fmt: skip
    # then 25 real hours (02:00 twice), and no 02:30 on the day that has none (skip policy)
    assert isinstance(fall, DryRun) and isinstance(spring, DryRun)
    assert fall.total == 25
    twice = [item.fire for item in fall.fires if item.fire.astimezone(BERLIN).hour == 2]
    assert len(twice) == 2 and twice[1] - twice[0] == timedelta(hours=1)
    assert [item.fire.astimezone(BERLIN).day for item in spring.fires] == [28, 30]
    assert [item.fire.astimezone(UTC).hour for item in spring.fires] == [1, 0]


def test_a_backfill_runs_every_fire_once_within_its_cap_and_completes():
    # given hourly fires over ten hours, three at a time
    schedule = cron("0 * * * *", handler="sleep", params={"seconds": 1})
    start = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    backfill = backfill_create(
        schedule=schedule, range_start=start, range_end=start + timedelta(hours=9),
        max_concurrency=3, params={"seconds": 0},
    )  # fmt: skip
    assert isinstance(backfill, Backfill)
    assert (backfill.fires_total, backfill.fires_created, backfill.status) == (10, 3, "running")
    # when its runs end, batch by batch
    passes = 0
    while backfill.status == BackfillStatus.RUNNING:
        active = BatchLog.objects.filter(backfill=backfill, status__in=ACTIVE_STATUSES).count()
        assert active <= 3
        end_all(backfill)
        backfill_top_up(backfill_id=backfill.pk)
        backfill.refresh_from_db()
        passes += 1
        assert passes < 10
    # then each fire has one run, made by the backfill, with its logical time and interval
    runs = list(BatchLog.objects.filter(schedule=schedule).order_by("scheduled_for"))
    assert [run.scheduled_for for run in runs] == [start + timedelta(hours=n) for n in range(10)]
    assert {(run.trigger, run.backfill_id) for run in runs} == {(Trigger.BACKFILL, backfill.pk)}
    assert all(run.logical_time == run.scheduled_for == run.data_interval_end for run in runs)
    assert [run.data_interval_start for run in runs] == [
        start - timedelta(hours=1) + timedelta(hours=n) for n in range(10)
    ]
    assert runs[0].params == {"seconds": 0}
    assert backfill.status == BackfillStatus.COMPLETED and backfill.finished_at is not None
    assert (backfill.fires_created, backfill.fires_existing, backfill.fires_total) == (10, 0, 10)
    assert backfill_progress_text(backfill_get(backfill_id=backfill.pk)) == (
        "created 10 of 10, 0 already run, 0 running"
    )
    occurrences = ScheduleOccurrence.objects.filter(schedule=schedule)
    assert occurrences.count() == 10
    assert set(occurrences.values_list("outcome", flat=True)) == {OccurrenceOutcome.FIRED}


def test_fires_beat_already_ran_are_counted_existing_and_not_run_again():
    # given an hourly schedule that beat fired at 04:00 and 05:00
    schedule = cron("0 * * * *")
    start = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    for hour in (4, 5):
        type(schedule).objects.filter(pk=schedule.pk).update(
            next_fire_at=start + timedelta(hours=hour)
        )
        schedules_fire_due(now=start + timedelta(hours=hour, seconds=1))
    beats = set(BatchLog.objects.filter(trigger=Trigger.SCHEDULE).values_list("pk", flat=True))
    assert len(beats) == 2
    # when a backfill covers 00:00 to 07:00
    preview = backfill_create(schedule=schedule, range_start=start,
                              range_end=start + timedelta(hours=7), dry_run=True)  # fmt: skip
    backfill = backfill_create(schedule=schedule, range_start=start,
                               range_end=start + timedelta(hours=7), max_concurrency=8)  # fmt: skip
    # then the dry run marked them, and the backfill made the six others
    assert isinstance(preview, DryRun) and preview.existing == 2
    assert isinstance(backfill, Backfill)
    assert (backfill.fires_created, backfill.fires_existing) == (6, 2)
    fires = BatchLog.objects.filter(schedule=schedule).values_list("scheduled_for", flat=True)
    assert sorted(fires) == [start + timedelta(hours=n) for n in range(8)]
    assert set(BatchLog.objects.filter(scheduled_for__hour__in=(4, 5)).values_list(
        "pk", flat=True)) == beats  # fmt: skip


def test_fires_already_run_are_passed_over_in_one_call_whatever_the_cap():
    # given a range of 2,500 fires of which all but the last two have runs (another backfill's)
    schedule = cron("* * * * *")
    start = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    end = start + timedelta(minutes=2499)
    first = backfill_create(schedule=schedule, range_start=start,
                            range_end=end - timedelta(minutes=2), max_concurrency=1000)  # fmt: skip
    while first.status == BackfillStatus.RUNNING:
        end_all(first)
        backfill_top_up(backfill_id=first.pk)
        first.refresh_from_db()
    # when a backfill of one at a time covers the whole range
    second = backfill_create(schedule=schedule, range_start=start, range_end=end,
                             max_concurrency=1)  # fmt: skip
    # then its first call passed over the 2,498 that ran and made the next one
    assert isinstance(second, Backfill)
    assert (second.fires_created, second.fires_existing) == (1, 2498)
    made = BatchLog.objects.get(backfill=second)
    assert made.scheduled_for == end - timedelta(minutes=1)
    assert made.data_interval_start == end - timedelta(minutes=2)
    end_all(second)
    backfill_top_up(backfill_id=second.pk)
    end_all(second)
    backfill_top_up(backfill_id=second.pk)
    second.refresh_from_db()
    assert (second.status, second.fires_created, second.fires_total) == ("completed", 2, 2500)


def test_a_fire_recorded_missed_becomes_fired_a_fire_in_a_run_row_keeps_its_row():
    schedule = cron("0 * * * *")
    start = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    now = datetime(2026, 6, 2, tzinfo=UTC)
    occurrences_record(
        [
            Occurrence(schedule.pk, start, OccurrenceOutcome.MISSED_SKIPPED, "beat was down"),
            Occurrence(schedule.pk, start + timedelta(hours=1), OccurrenceOutcome.DROPPED, "",
                       last_scheduled_for=start + timedelta(hours=3), fires=3),
        ],
        now=now,
    )  # fmt: skip
    backfill = backfill_create(schedule=schedule, range_start=start,
                               range_end=start + timedelta(hours=4), max_concurrency=5)  # fmt: skip
    rows = {row.scheduled_for: row for row in ScheduleOccurrence.objects.filter(schedule=schedule)}
    assert len(rows) == 3  # the missed one, the run row, and 04:00
    missed = rows[start]
    assert missed.outcome == OccurrenceOutcome.FIRED
    assert missed.execution.backfill_id == backfill.pk
    run = rows[start + timedelta(hours=1)]
    assert (run.outcome, run.fires, run.execution_id) == (OccurrenceOutcome.DROPPED, 3, None)
    assert rows[start + timedelta(hours=4)].outcome == OccurrenceOutcome.FIRED


def test_pause_stops_creation_and_resume_goes_on_from_the_cursor():
    schedule = cron("*/10 * * * *")
    start = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    end = start + timedelta(minutes=50)
    backfill = backfill_create(
        schedule=schedule, range_start=start, range_end=end, max_concurrency=2
    )
    backfill_pause(backfill_id=backfill.pk)
    end_all(backfill)
    assert backfill_top_up(backfill_id=backfill.pk) is None
    assert backfills_top_up() == 0
    assert BatchLog.objects.filter(backfill=backfill).count() == 2
    resumed = backfill_resume(backfill_id=backfill.pk)
    assert (resumed.status, resumed.fires_created) == (BackfillStatus.RUNNING, 4)
    fires = BatchLog.objects.filter(backfill=backfill).values_list("scheduled_for", flat=True)
    assert sorted(fires) == [start + timedelta(minutes=10 * n) for n in range(4)]
    assert AuditEntry.objects.filter(object_id=backfill.pk, action__in=["paused", "resumed"]
                                     ).count() == 2  # fmt: skip


def test_cancel_stops_its_queued_runs_and_creates_no_more():
    schedule = cron("*/10 * * * *")
    start = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    end = start + timedelta(minutes=50)
    backfill = backfill_create(
        schedule=schedule, range_start=start, range_end=end, max_concurrency=3
    )
    running = BatchLog.objects.filter(backfill=backfill).order_by("scheduled_for").first()
    BatchLog.objects.filter(pk=running.pk).update(status=ExecutionStatus.STARTED)
    cancelled = backfill_cancel(backfill_id=backfill.pk)
    assert cancelled.status == BackfillStatus.CANCELLED and cancelled.finished_at
    statuses = sorted(BatchLog.objects.filter(backfill=backfill).values_list("status", flat=True))
    assert statuses == ["STARTED", "STOPPED", "STOPPED"]  # the started one finishes
    end_all(backfill)
    assert backfill_top_up(backfill_id=backfill.pk) is None
    assert BatchLog.objects.filter(backfill=backfill).count() == 3
    from batchjobs.errors import Conflict

    with pytest.raises(Conflict):
        backfill_resume(backfill_id=backfill.pk)


def test_an_ended_run_tops_its_backfill_up_through_the_hook():
    schedule = cron("0 * * * *")
    start = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    backfill = backfill_create(schedule=schedule, range_start=start,
                               range_end=start + timedelta(hours=2), max_concurrency=1)  # fmt: skip
    first = BatchLog.objects.get(backfill=backfill)
    backfill_execution_ended(execution_id=first.pk, status=ExecutionStatus.QUEUED)  # a retry
    assert BatchLog.objects.filter(backfill=backfill).count() == 1
    end_all(backfill)
    backfill_execution_ended(execution_id=first.pk, status=ExecutionStatus.COMPLETED)
    assert BatchLog.objects.filter(backfill=backfill).count() == 2


def test_one_bad_backfill_does_not_stop_the_periodic_pass():
    start = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    bad, good = cron("0 * * * *"), cron("0 * * * *")
    broken = backfill_create(schedule=bad, range_start=start,
                             range_end=start + timedelta(hours=3))  # fmt: skip
    healthy = backfill_create(schedule=good, range_start=start,
                              range_end=start + timedelta(hours=3))  # fmt: skip
    end_all(broken), end_all(healthy)
    # a zone stored behind validation's back
    type(bad).objects.filter(pk=bad.pk).update(timezone="Nowhere/Atlantis")
    errors: list[str] = []
    assert backfills_top_up(errors=errors) == 1
    assert len(errors) == 1 and errors[0].startswith(f"backfill {broken.pk}:")
    assert BatchLog.objects.filter(backfill=healthy).count() == 2


@pytest.mark.django_db(transaction=True)
def test_drivers_racing_beat_make_each_fire_once():
    """Two drivers and beat at once on one schedule: the backfill's row lock keeps the
    drivers apart, the fire key keeps beat and the backfill apart."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises every write: the race needs PostgreSQL's row locks")
    schedule = cron("* * * * *")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(minutes=59)
    type(schedule).objects.filter(pk=schedule.pk).update(next_fire_at=start)
    backfill = backfill_create(schedule=schedule, range_start=start, range_end=now,
                               max_concurrency=1000, dry_run=False)  # fmt: skip
    # Back to the start (the create's own top-up ran): another beat of the session may have
    # fired one meanwhile, which the race must count as already run, once.
    Backfill.objects.filter(pk=backfill.pk).update(cursor=None, fires_created=0, fires_existing=0)
    BatchLog.objects.filter(backfill=backfill).delete()
    barrier = threading.Barrier(3)

    def run(step):
        try:
            barrier.wait()
            step()
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=run, args=(lambda: backfill_top_up(backfill_id=backfill.pk),)),
        threading.Thread(target=run, args=(lambda: backfill_top_up(backfill_id=backfill.pk),)),
        threading.Thread(target=run, args=(lambda: schedules_fire_due(now=now),)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    backfill.refresh_from_db()
    fires = list(BatchLog.objects.filter(schedule=schedule).values_list("scheduled_for", flat=True))
    assert len(fires) == len(set(fires)) == 60
    ours = BatchLog.objects.filter(backfill=backfill).count()
    assert backfill.fires_created == ours
    assert backfill.fires_created + backfill.fires_existing == 60


def test_the_periodic_pass_is_a_housekeeping_task_beat_runs():
    from django_celery_beat.models import PeriodicTask

    from batchjobs.tasks import backfills_top_up as task

    periodic = PeriodicTask.objects.get(task="batchjobs.backfills_top_up")
    assert periodic.enabled and periodic.interval.every == 60
    # given a running backfill whose runs ended unseen (no hook ran)
    schedule = cron("0 * * * *")
    start = datetime(2026, 6, 1, tzinfo=UTC)
    backfill = backfill_create(schedule=schedule, range_start=start,
                               range_end=start + timedelta(hours=1))  # fmt: skip
    end_all(backfill)
    # when the task runs, then it made the next run
    assert task() == {"created": 1, "errors": []}


def closed_on(schedule, policy: str, *days: str) -> None:
    """Attach a calendar excluding `days` to `schedule`, with the calendar policy `policy`."""
    calendar = Calendar.objects.create(name=f"closed-{schedule.pk}", excluded_dates=list(days))
    schedule.calendars.add(calendar)
    type(schedule).objects.filter(pk=schedule.pk).update(calendar_policy=policy)
    schedule.refresh_from_db()


def test_calendar_skip_leaves_excluded_fires_unrun_and_records_them_as_beat_does():
    # given a daily 02:00 schedule whose calendar excludes June 2 and 3
    schedule = cron("0 2 * * *")
    closed_on(schedule, CalendarPolicy.SKIP, "2026-06-02", "2026-06-03")
    start, end = datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 5, 3, tzinfo=UTC)
    # when previewed, then backfilled
    preview = backfill_create(schedule=schedule, range_start=start, range_end=end, dry_run=True)
    backfill = backfill_create(schedule=schedule, range_start=start, range_end=end,
                               max_concurrency=10)  # fmt: skip
    # then the dry run marks the two, the backfill runs the three others and records the two
    assert isinstance(preview, DryRun) and (preview.total, preview.excluded) == (5, 2)
    marked = [item for item in preview.fires if item.excluded]
    assert [item.fire.day for item in marked] == [2, 3] and marked[0].moved_to is None
    assert marked[0].reason == (
        f"2026-06-02 is excluded by calendar 'closed-{schedule.pk}': a custom excluded date"
    )
    assert isinstance(backfill, Backfill)
    runs = BatchLog.objects.filter(schedule=schedule).order_by("scheduled_for")
    assert [run.scheduled_for.day for run in runs] == [1, 4, 5]
    # the fire after an excluded one keeps the nominal fire before it as its interval's start
    assert runs[1].data_interval_start == datetime(2026, 6, 3, 2, tzinfo=UTC)
    excluded = ScheduleOccurrence.objects.filter(outcome=OccurrenceOutcome.EXCLUDED)
    assert [row.scheduled_for.day for row in excluded.order_by("scheduled_for")] == [2, 3]
    assert excluded.get(scheduled_for__day=2).reason == marked[0].reason
    # and once its runs end it completes with every fire of the range in its total
    end_all(backfill)
    backfill_top_up(backfill_id=backfill.pk)
    backfill.refresh_from_db()
    assert backfill.status == BackfillStatus.COMPLETED
    assert (backfill.fires_created, backfill.fires_existing, backfill.fires_total) == (3, 0, 5)


def test_calendar_move_runs_the_moved_fires_and_one_moved_to_a_day_to_come_waits():
    # given an hourly schedule whose calendar excludes June 2, and, apart, today
    past = cron("0 2 * * *")
    closed_on(past, CalendarPolicy.MOVE, "2026-06-02")
    start, end = datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 3, 3, tzinfo=UTC)
    preview = backfill_create(schedule=past, range_start=start, range_end=end, dry_run=True)
    backfill = backfill_create(schedule=past, range_start=start, range_end=end, max_concurrency=5)
    # then the moved fire runs now (its allowed day is past too), recorded MOVED with that day
    assert isinstance(preview, DryRun) and (preview.excluded, preview.moved) == (0, 1)
    assert preview.fires[1].moved_to == datetime(2026, 6, 3, 2, tzinfo=UTC)
    assert isinstance(backfill, Backfill) and backfill.fires_created == 3
    moved_run = BatchLog.objects.get(schedule=past, scheduled_for__day=2)
    assert moved_run.published_at is not None and moved_run.next_attempt_at <= database_now()
    row = ScheduleOccurrence.objects.get(schedule=past, scheduled_for__day=2)
    assert (row.outcome, row.execution_id) == (OccurrenceOutcome.MOVED, moved_run.pk)
    assert row.due_at == datetime(2026, 6, 3, 2, tzinfo=UTC)
    # when today is excluded, an hourly schedule's fires of today move to tomorrow: still to come
    now = database_now()
    hourly = cron("0 * * * *")
    closed_on(hourly, CalendarPolicy.MOVE, now.date().isoformat())
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    backfill_create(schedule=hourly, range_start=midnight, range_end=now, max_concurrency=1)
    waiting = BatchLog.objects.get(schedule=hourly, scheduled_for=midnight)
    # then its run waits unpublished for that instant, as beat's would
    assert waiting.published_at is None
    assert waiting.next_attempt_at == midnight + timedelta(days=1)
    row = ScheduleOccurrence.objects.get(schedule=hourly, scheduled_for=midnight)
    assert (row.outcome, row.due_at) == (OccurrenceOutcome.MOVED, midnight + timedelta(days=1))


@pytest.mark.parametrize("kind", ["cron", "interval"])
def test_a_backfill_keeps_to_the_schedules_start_and_end(kind):
    # given a schedule every 15 minutes that starts at 01:00 and ends at 02:00
    window = datetime(2026, 6, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, 2, tzinfo=UTC)
    fields = {"start_at": window[0], "end_at": window[1]}
    job = handler_job("noop", queue=IN_PROCESS_QUEUE)
    if kind == "cron":
        schedule = schedule_create(job=job, kind="cron", cron_expression="*/15 * * * *", **fields)
    else:
        schedule = schedule_create(job=job, kind="interval", interval_every=15,
                                   interval_unit="minutes", **fields)  # fmt: skip
    start, end = datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 1, 4, tzinfo=UTC)
    # when backfilled over four hours
    preview = backfill_create(schedule=schedule, range_start=start, range_end=end, dry_run=True)
    backfill = backfill_create(schedule=schedule, range_start=start, range_end=end,
                               max_concurrency=20)  # fmt: skip
    # then only its five fires from 01:00 to 02:00 count and run
    expected = [window[0] + timedelta(minutes=15 * n) for n in range(5)]
    assert isinstance(preview, DryRun) and preview.total == 5
    assert [item.fire for item in preview.fires] == expected
    assert isinstance(backfill, Backfill) and backfill.fires_total == 5
    runs = BatchLog.objects.filter(schedule=schedule).order_by("scheduled_for")
    assert [run.scheduled_for for run in runs] == expected


def weekdays(first: date, last: date) -> int:
    return sum((first + timedelta(days=n)).weekday() < 5 for n in range((last - first).days + 1))


def test_counting_is_exact_on_a_grid_and_estimated_closely_past_the_exact_budget():
    after = datetime(2026, 1, 1, tzinfo=UTC)
    century = after + timedelta(days=36525)
    # an interval's grid: exact by arithmetic over a century of seconds
    seconds = Timing(kind="interval", interval_every=1, interval_unit="seconds", start_at=after)
    counted = backfill_fires_counted(seconds, range_start=after, range_end=century, listed=3)
    assert (counted.total, counted.estimated) == (36525 * 86400 + 1, False)
    assert counted.listed == [after + timedelta(seconds=n) for n in range(3)]
    # a cron under the budget: exact
    hourly = Timing(kind="cron", cron_expression="0 * * * *", timezone="Asia/Seoul")
    day = backfill_fires_counted(hourly, range_start=after, range_end=after + timedelta(days=1),
                                 listed=1000)  # fmt: skip
    assert (day.total, day.estimated) == (25, False)
    # past it: every minute in Seoul over two years, estimated to the fire
    minutes = Timing(kind="cron", cron_expression="* * * * *", timezone="Asia/Seoul")
    two_years = after + timedelta(days=730)
    counted = backfill_fires_counted(minutes, range_start=after, range_end=two_years, listed=10)
    assert counted.estimated and counted.total == 730 * 1440 + 1
    assert counted.total > FIRES_COUNTED_EXACTLY
    # office hours in Berlin (through two DST changes a year), within a tenth of a percent
    office = Timing(kind="cron", cron_expression="*/5 9-17 * * 1-5", timezone="Europe/Berlin")
    year = datetime(2026, 12, 31, 23, tzinfo=UTC)
    counted = backfill_fires_counted(office, range_start=after, range_end=year, listed=10)
    exact = weekdays(date(2026, 1, 1), date(2026, 12, 31)) * 9 * 12
    assert counted.estimated and abs(counted.total - exact) <= exact / 1000
    # a day interval over a century
    daily = Timing(kind="interval", interval_every=1, interval_unit="days", start_at=after,
                   timezone="Europe/Berlin")  # fmt: skip
    counted = backfill_fires_counted(daily, range_start=after, range_end=century, listed=10)
    assert counted.estimated and abs(counted.total - 36526) <= 1


def test_an_estimated_total_becomes_exact_when_the_backfill_completes():
    # given every minute for two weeks: over the exact budget, so estimated
    schedule = cron("* * * * *", "Asia/Seoul")
    start = datetime(2026, 6, 1, tzinfo=UTC)
    end = start + timedelta(days=14)
    backfill = backfill_create(schedule=schedule, range_start=start, range_end=end,
                               max_concurrency=2)  # fmt: skip
    assert isinstance(backfill, Backfill)
    shown = backfill_get(backfill_id=backfill.pk)
    assert backfill_total_estimated(shown)
    assert backfill_progress_text(shown).startswith(f"created 2 of ≈ {shown.fires_total:,},")
    # when the driver has reached the last two fires (the earlier ones created, as if run)
    Backfill.objects.filter(pk=backfill.pk).update(
        fires_total=14 * 1440 + 99, cursor=end - timedelta(minutes=2), fires_created=14 * 1440 - 1
    )
    end_all(backfill)
    backfill_top_up(backfill_id=backfill.pk)
    end_all(backfill)
    backfill_top_up(backfill_id=backfill.pk)
    # then its total is what it counted on the way, no longer an estimate
    done = backfill_get(backfill_id=backfill.pk)
    assert done.status == BackfillStatus.COMPLETED
    assert done.fires_total == 14 * 1440 + 1 and not backfill_total_estimated(done)
