"""Executions counted by status over one period (an hour, a day): what the dashboard's and a
job's charts draw."""

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Func, QuerySet

from batchjobs.models import BatchLog


@dataclass(frozen=True)
class StatusCounts:
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def counts_per_period(executions: QuerySet[BatchLog], period: Func) -> dict[Any, dict[str, int]]:
    """The executions counted by `period` (a truncation of created_at: TruncHour, TruncDate)
    and status, in one grouped query: {period: {status: count}}, periods without any left out."""
    rows = (
        executions.annotate(period=period)
        .order_by()
        .values("period", "status")
        .annotate(n=Count("pk"))
        .values_list("period", "status", "n")
    )
    counted: dict[Any, dict[str, int]] = defaultdict(dict)
    for when, status, n in rows:
        counted[when][status] = n
    return counted
