"""Rows set aside: what beat or housekeeping could not process, waiting for an operator."""

from dataclasses import dataclass

from batchjobs.models import BatchLog, BatchSchedule


@dataclass(frozen=True)
class SetAsideCounts:
    """Rows that beat or housekeeping set aside because processing them raised (DESIGN.md §4,
    invariant 11): they wait for an operator."""

    schedules: int
    executions: int

    @property
    def total(self) -> int:
        return self.schedules + self.executions


def set_aside_counts() -> SetAsideCounts:
    return SetAsideCounts(
        schedules=BatchSchedule.objects.filter(set_aside_at__isnull=False).count(),
        executions=BatchLog.objects.filter(set_aside_at__isnull=False).count(),
    )
