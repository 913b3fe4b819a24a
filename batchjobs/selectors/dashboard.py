"""The admin dashboard's read: the scheduler's status card, health, executions by status, what
runs now (with progress) and what is due next, recent failures, rows set aside, queues no worker
consumes, and the series the charts draw. Every query is bounded: by an index, a time window or
a limit."""

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models.functions import TruncHour

from batchjobs.models import BatchLog, BatchSchedule, ExecutionStatus
from batchjobs.models.clock import database_now

from .executions import recent_failures
from .liveness import Liveness
from .progress import RunningExecution, running_executions
from .scheduler import SchedulerStatus, scheduler_status
from .schedules import upcoming_fires
from .set_aside import SetAsideCounts, set_aside_counts
from .status_counts import StatusCounts, counts_per_period
from .workers import (
    QueueWithoutConsumer,
    WorkerSeen,
    queues_consumed_by,
    queues_without_consumer,
    workers_present,
)

# Executions that ended are counted over this window, and durations measured over it.
WINDOW = timedelta(hours=24)
DURATION_ROWS_LIMIT = 20_000


@dataclass(frozen=True)
class HourCounts(StatusCounts):
    hour: datetime


def executions_per_hour(*, now: datetime | None = None, hours: int = 24) -> list[HourCounts]:
    """Executions created in each of the last `hours` hours (the current one last), by status."""
    now = now or database_now()
    current = now.replace(minute=0, second=0, microsecond=0)
    first = current - timedelta(hours=hours - 1)
    by_hour: dict[datetime, dict[str, int]] = counts_per_period(
        BatchLog.objects.filter(status__in=ExecutionStatus.values, created_at__gte=first),
        TruncHour("created_at"),
    )
    hours_shown = [first + timedelta(hours=i) for i in range(hours)]
    return [HourCounts(hour=hour, counts=by_hour.get(hour, {})) for hour in hours_shown]


@dataclass(frozen=True)
class JobDurations:
    job_id: int
    job_name: str
    samples: int
    p50: float
    p95: float


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of sorted `values` (what the run at that rank took)."""
    rank = math.ceil(round(fraction * len(values), 9))
    return values[min(max(rank, 1), len(values)) - 1]


def duration_percentiles(*, since: datetime | None = None, limit: int = 15) -> list[JobDurations]:
    """p50 and p95 of completed runs per job since `since` (the last 24 h), slowest p95 first;
    at most DURATION_ROWS_LIMIT of the latest runs are read."""
    since = since or database_now() - WINDOW
    rows = (
        BatchLog.objects.filter(
            status=ExecutionStatus.COMPLETED,
            created_at__gte=since,
            started_at__isnull=False,
            finished_at__isnull=False,
        )
        .order_by("-created_at")
        .values_list("job_id", "job__name", "started_at", "finished_at")[:DURATION_ROWS_LIMIT]
    )
    durations: dict[tuple[int, str], list[float]] = defaultdict(list)
    for job_id, name, started, finished in rows:
        if started and finished:  # both set, as filtered: said again for the type checker
            durations[(job_id, name)].append((finished - started).total_seconds())
    result = []
    for (job_id, name), values in durations.items():
        values.sort()
        result.append(
            JobDurations(
                job_id=job_id,
                job_name=name,
                samples=len(values),
                p50=statistics.median(values),
                p95=percentile(values, 0.95),
            )
        )
    result.sort(key=lambda d: (-d.p95, d.job_name))
    return result[:limit]


@dataclass(frozen=True)
class Dashboard:
    now: datetime
    # The status card (GET /api/scheduler's, with the executions of the last 24 h): beat,
    # totals, the next fire.
    status: SchedulerStatus
    health: Liveness
    counts: dict[str, int]
    running: list[RunningExecution]
    upcoming: list[BatchSchedule]
    failures: list[BatchLog]
    per_hour: list[HourCounts]
    durations: list[JobDurations]
    set_aside: SetAsideCounts
    # The workers' own announcements (queues, pool, concurrency); None: unknown.
    workers: list[WorkerSeen] | None
    # Queues of jobs with runs due or waiting that no running worker consumes; None: unknown.
    queues_without_consumer: list[QueueWithoutConsumer] | None


def dashboard(*, now: datetime | None = None) -> Dashboard:
    now = now or database_now()
    # Executions ended in the last 24 h, not all of them: counting 100,000 rows by status
    # took ~0.1 s of the page's 0.3 s.
    status = scheduler_status(since=now - WINDOW)
    health = Liveness(
        broker_reachable=status.broker_reachable, beats=status.beats, workers=status.workers
    )
    # The broker did not answer the liveness read: do not wait for it a second time.
    workers = workers_present() if health.broker_reachable else None
    consumed = queues_consumed_by(workers)
    return Dashboard(
        now=now,
        status=status,
        health=health,
        counts=status.counts,
        running=running_executions(),
        upcoming=upcoming_fires(),
        failures=recent_failures(),
        per_hour=executions_per_hour(now=now),
        durations=duration_percentiles(since=now - WINDOW),
        set_aside=set_aside_counts(),
        workers=workers,
        queues_without_consumer=(
            None if consumed is None else queues_without_consumer(consumed=consumed)
        ),
    )
