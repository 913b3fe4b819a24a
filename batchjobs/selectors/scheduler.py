"""The scheduler's state in one read: the API's and the command line's status."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from batchjobs.models import BatchJob, BatchSchedule, ExecutionStatus, ScheduleKind
from batchjobs.models.execution import RUNNING_STATUSES

from .executions import execution_counts
from .liveness import BeatHeartbeat, liveness
from .schedules import NextDue, next_due

# A once-schedule whose time is this close to its creation was made to run now (the clocks of
# the database, which computes "now + delay", and of the web process, which stamps created_at,
# may differ by a little).
DUE_WHEN_MADE = timedelta(seconds=5)


class FireTiming(StrEnum):
    """How the time of a schedule's fire was given."""

    NOW = "now"  # once, due when it was made (a delay of 0, "run now")
    AFTER_DELAY = "after_delay"  # once, a delay from when it was made
    AT = "at"  # once, at a date and time
    RECURRING = "recurring"  # interval or cron


def fire_timing(
    *, kind: str, run_at: datetime | None, created_at: datetime, delay_seconds: float | None
) -> FireTiming:
    """How a schedule's fire time was given: a once-schedule keeps the delay it was made with
    (schedule_create's delay_seconds; 0 is "now"); one given a date and time that was already
    due when it was made runs now too."""
    if kind != ScheduleKind.ONCE:
        return FireTiming.RECURRING
    if delay_seconds is not None:
        return FireTiming.AFTER_DELAY if delay_seconds > 0 else FireTiming.NOW
    if run_at is None or run_at <= created_at + DUE_WHEN_MADE:
        return FireTiming.NOW
    return FireTiming.AT


@dataclass(frozen=True)
class SchedulerStatus:
    beats: list[BeatHeartbeat]
    # None when the broker could not be asked (then beats and workers are unknown, not absent).
    broker_reachable: bool
    workers: list[str] | None
    total_jobs: int
    counts: dict[str, int]
    next_due: NextDue | None
    # How next_due's time was given; None when nothing is due.
    next_due_timing: FireTiming | None
    # Live schedules (not paused nor set aside, of an enabled job) with a fire to come or due.
    scheduled_fires: int

    @property
    def beat_alive(self) -> bool:
        return bool(self.beats)

    @property
    def running(self) -> int:
        return sum(self.counts[status] for status in RUNNING_STATUSES)

    @property
    def waiting(self) -> int:
        """Runs waiting to happen: executions QUEUED (due, waiting for a worker, a limit's
        slot or a retry's time) and the next fire of each live schedule."""
        return self.counts[ExecutionStatus.QUEUED] + self.scheduled_fires


def _next_due_with_timing() -> tuple[NextDue | None, FireTiming | None]:
    due = next_due()
    if due is None:
        return None, None
    if due.schedule_kind != ScheduleKind.ONCE:
        return due, FireTiming.RECURRING
    row = BatchSchedule.objects.filter(pk=due.schedule_id).values_list(
        "run_at", "created_at", "delay_seconds"
    )
    times = row.first()
    if times is None:  # deleted since next_due read it: not due any more
        return None, None
    run_at, created_at, delay_seconds = times
    timing = fire_timing(
        kind=due.schedule_kind, run_at=run_at, created_at=created_at, delay_seconds=delay_seconds
    )
    return due, timing


def scheduler_status(*, ask_workers: bool = True, since: datetime | None = None) -> SchedulerStatus:
    """Beat alive, workers seen, executions by status (all of them; with `since`, those
    waiting or running and those that ended since: execution_counts), the fires to come and
    the next one."""
    alive = liveness(ask_workers=ask_workers)
    due, timing = _next_due_with_timing()
    return SchedulerStatus(
        beats=alive.beats,
        broker_reachable=alive.broker_reachable,
        workers=alive.workers,
        total_jobs=BatchJob.objects.count(),
        counts=execution_counts(since=since),
        next_due=due,
        next_due_timing=timing,
        # upcoming_fires' filter (selectors.schedules), counted.
        scheduled_fires=BatchSchedule.objects.filter(
            paused=False, next_fire_at__isnull=False, set_aside_at__isnull=True, job__enabled=True
        ).count(),
    )
