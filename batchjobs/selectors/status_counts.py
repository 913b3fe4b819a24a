"""Executions counted by status over one period (an hour, a day): what the dashboard's and a
job's charts draw."""

from dataclasses import dataclass


@dataclass(frozen=True)
class StatusCounts:
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())
