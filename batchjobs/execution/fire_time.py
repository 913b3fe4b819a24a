"""The fire time a run stands for: its logical time and data interval (issue #15).

A scheduled run's logical time is its nominal fire time and its data interval runs from the
schedule's previous nominal fire to it; a run started by hand stands for its start time (see
services/executions.py, execution_fire_time). Retries are the same execution and a restart
copies its source's, so every attempt of a period processes the same period."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from batchjobs.models import BatchLog


@dataclass(frozen=True)
class FireTime:
    logical_time: datetime | None
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    scheduled_for: datetime | None = None

    @classmethod
    def read(
        cls,
        logical_time: datetime | None,
        data_interval_start: datetime | None,
        data_interval_end: datetime | None,
        scheduled_for: datetime | None,
    ) -> "FireTime":
        """From an execution's columns; a row written before they were (an older release's
        fire) stands for its scheduled time, over an empty interval."""
        logical = logical_time or scheduled_for
        return cls(
            logical_time=logical,
            data_interval_start=data_interval_start or logical,
            data_interval_end=data_interval_end or logical,
            scheduled_for=scheduled_for,
        )

    @classmethod
    def of(cls, execution: BatchLog) -> "FireTime":
        return cls.read(
            execution.logical_time,
            execution.data_interval_start,
            execution.data_interval_end,
            execution.scheduled_for,
        )

    def variables(self) -> dict[str, Any]:
        """By name, as handlers, batch jobs and templates see them."""
        return {
            "scheduled_for": self.scheduled_for,
            "logical_time": self.logical_time,
            "data_interval_start": self.data_interval_start,
            "data_interval_end": self.data_interval_end,
        }


def execution_fire_time_read(execution_id: int) -> FireTime:
    """Read from the execution's row: a worker's claim reads back only what every run needs."""
    row = (
        BatchLog.objects.filter(pk=execution_id)
        .values_list("logical_time", "data_interval_start", "data_interval_end", "scheduled_for")
        .first()
    )
    return FireTime.read(*row) if row else FireTime(None, None, None)
