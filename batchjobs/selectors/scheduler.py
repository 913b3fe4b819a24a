"""The scheduler's state in one read: the API's and the command line's status."""

from dataclasses import dataclass

from batchjobs.models import BatchJob
from batchjobs.models.execution import RUNNING_STATUSES

from .executions import execution_counts
from .liveness import BeatHeartbeat, liveness
from .schedules import NextDue, next_due


@dataclass(frozen=True)
class SchedulerStatus:
    beats: list[BeatHeartbeat]
    # None when the broker could not be asked (then beats and workers are unknown, not absent).
    broker_reachable: bool
    workers: list[str] | None
    total_jobs: int
    counts: dict[str, int]
    next_due: NextDue | None

    @property
    def beat_alive(self) -> bool:
        return bool(self.beats)

    @property
    def running(self) -> int:
        return sum(self.counts[status] for status in RUNNING_STATUSES)


def scheduler_status(*, ask_workers: bool = True) -> SchedulerStatus:
    """Beat alive, workers seen, executions by status and the next fire due."""
    alive = liveness(ask_workers=ask_workers)
    return SchedulerStatus(
        beats=alive.beats,
        broker_reachable=alive.broker_reachable,
        workers=alive.workers,
        total_jobs=BatchJob.objects.count(),
        counts=execution_counts(),
        next_due=next_due(),
    )
