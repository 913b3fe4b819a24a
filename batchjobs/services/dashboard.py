"""Read queries of the admin dashboard and execution pages: scheduler health, executions by
status, what is due and what runs now (with progress, rate and ETA), recent failures, and the
series the charts draw. Every query is bounded: by an index, a time window or a limit.
What the API and command line read too (liveness of beats and workers) is in selectors.
"""

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Subquery
from django.db.models.functions import TruncHour

from batchjobs.models import BatchLog, BatchSchedule, ExecutionStatus, StepExecution
from batchjobs.models.clock import database_now
from batchjobs.models.execution import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    RESTARTABLE_STATUSES,
    RUNNING_STATUSES,
    STOPPABLE_STATUSES,
)
from batchjobs.selectors import Liveness, SetAsideCounts, liveness, set_aside_counts

WINDOW = timedelta(hours=24)
DURATION_ROWS_LIMIT = 20_000


# --- counts, due, failures -------------------------------------------------------------------


def execution_counts(*, since: datetime) -> dict[str, int]:
    """Executions by status: those waiting or running now whatever their age, and those that
    ended since `since`, by when they were created. Every status is listed (0 included)."""
    active = BatchLog.objects.filter(status__in=ACTIVE_STATUSES)
    # Naming every final status lets PostgreSQL use the (status, created_at) index.
    recent = BatchLog.objects.filter(status__in=FINAL_STATUSES, created_at__gte=since)
    counts = dict.fromkeys(ExecutionStatus.values, 0)
    for rows in (active, recent):
        counts.update(
            rows.order_by().values("status").annotate(n=Count("pk")).values_list("status", "n")
        )
    return counts


def upcoming_fires(*, limit: int = 10) -> list[BatchSchedule]:
    """The live schedules due next, with their job."""
    return list(
        BatchSchedule.objects.select_related("job")
        .filter(
            paused=False, next_fire_at__isnull=False, set_aside_at__isnull=True, job__enabled=True
        )
        .order_by("next_fire_at", "pk")[:limit]
    )


def recent_failures(*, limit: int = 10) -> list[BatchLog]:
    return list(
        BatchLog.objects.select_related("job")
        .filter(status=ExecutionStatus.FAILED)
        .order_by("-created_at", "-pk")[:limit]
    )


def error_summary(error: str) -> str:
    """The line of an error that names it: a traceback's last line."""
    lines = (error or "").strip().splitlines()
    return lines[-1] if lines else ""


# --- progress --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """How far a running execution or step is: items done, of how many (reported by the job,
    or estimated from the job's last completed run), at what rate, and when it should end."""

    label: str
    status: str
    done: int | None
    total: int | None
    total_estimated: bool
    rate: float | None  # items per second since the start
    eta_seconds: float | None

    @property
    def percent(self) -> float | None:
        if self.done is None or not self.total:
            return None
        return min(100.0, 100.0 * self.done / self.total)


def _progress(
    *, label: str, status: str, done: int | None, total: int | None, estimated: bool,
    started_at: datetime | None, now: datetime,
) -> Progress:  # fmt: skip
    rate = eta = None
    if done is not None and started_at is not None:
        elapsed = (now - started_at).total_seconds()
        if elapsed > 0:
            rate = done / elapsed
    if total is not None and done is not None and rate:
        eta = max(0.0, (total - done) / rate)
    return Progress(label=label, status=status, done=done, total=total,
                    total_estimated=estimated, rate=rate, eta_seconds=eta)  # fmt: skip


def _usual_step_sizes(execution: BatchLog) -> dict[tuple[str, str], int]:
    """Items each step read in the job's latest completed execution: the estimate of a running
    step's total when the reader cannot know it."""
    latest = (
        BatchLog.objects.filter(job_id=execution.job_id, status=ExecutionStatus.COMPLETED)
        .exclude(pk=execution.pk)
        .order_by("-created_at", "-pk")
        .values("pk")[:1]
    )
    rows = StepExecution.objects.filter(
        execution_id=Subquery(latest), status=ExecutionStatus.COMPLETED
    ).values_list("step_name", "partition", "read_count")
    return {(name, partition): count for name, partition, count in rows}


def execution_progress(*, execution: BatchLog, now: datetime | None = None) -> list[Progress]:
    """The execution's own progress (as its handler reports it), then one entry per running
    step or partition of a batch job, with its counters."""
    now = now or database_now()
    entries = []
    if execution.progress_done is not None:
        entries.append(
            _progress(
                label="",
                status=execution.status,
                done=execution.progress_done,
                total=execution.progress_total,
                estimated=False,
                started_at=execution.started_at,
                now=now,
            )  # fmt: skip
        )
    if execution.status not in RUNNING_STATUSES:
        return entries
    running = list(
        StepExecution.objects.filter(execution=execution, status__in=RUNNING_STATUSES).order_by(
            "pk"
        )
    )
    # A partitioned step's own row counts nothing: its partitions do the reading.
    partitioned = {step.step_name for step in running if step.partition}
    running = [step for step in running if step.partition or step.step_name not in partitioned]
    if not running:
        return entries
    usual = _usual_step_sizes(execution)
    for step in running:
        total = usual.get((step.step_name, step.partition))
        label = f"{step.step_name} [{step.partition}]" if step.partition else step.step_name
        entries.append(
            _progress(
                label=label,
                status=step.status,
                done=step.read_count,
                total=total,
                estimated=total is not None,
                started_at=step.started_at,
                now=now,
            )  # fmt: skip
        )
    return entries


@dataclass(frozen=True)
class RunningExecution:
    execution: BatchLog
    progress: list[Progress]


def running_executions(*, limit: int = 20) -> list[RunningExecution]:
    executions = (
        BatchLog.objects.select_related("job")
        .filter(status__in=RUNNING_STATUSES)
        .order_by("started_at", "pk")[:limit]
    )
    now = database_now()
    return [
        RunningExecution(execution=e, progress=execution_progress(execution=e, now=now))
        for e in executions
    ]


def execution_operations(*, execution: BatchLog) -> list[str]:
    """The operator's actions that the execution's status allows."""
    operations = []
    if execution.status in STOPPABLE_STATUSES:
        operations.append("stop")
    if execution.status in RESTARTABLE_STATUSES:
        operations += ["restart", "abandon"]
    return operations


# --- charts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HourCounts:
    hour: datetime
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def executions_per_hour(*, now: datetime | None = None, hours: int = 24) -> list[HourCounts]:
    """Executions created in each of the last `hours` hours (the current one last), by status."""
    now = now or database_now()
    current = now.replace(minute=0, second=0, microsecond=0)
    first = current - timedelta(hours=hours - 1)
    rows = (
        BatchLog.objects.filter(status__in=ExecutionStatus.values, created_at__gte=first)
        .annotate(hour=TruncHour("created_at"))
        .order_by()
        .values("hour", "status")
        .annotate(n=Count("pk"))
        .values_list("hour", "status", "n")
    )
    by_hour: dict[datetime, dict[str, int]] = defaultdict(dict)
    for hour, status, n in rows:
        by_hour[hour][status] = n
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


# --- the whole page --------------------------------------------------------------------------


@dataclass(frozen=True)
class Dashboard:
    now: datetime
    health: Liveness
    counts: dict[str, int]
    running: list[RunningExecution]
    upcoming: list[BatchSchedule]
    failures: list[BatchLog]
    per_hour: list[HourCounts]
    durations: list[JobDurations]
    set_aside: SetAsideCounts


def dashboard(*, now: datetime | None = None) -> Dashboard:
    now = now or database_now()
    return Dashboard(
        now=now,
        health=liveness(),
        counts=execution_counts(since=now - WINDOW),
        running=running_executions(),
        upcoming=upcoming_fires(),
        failures=recent_failures(),
        per_hour=executions_per_hour(now=now),
        durations=duration_percentiles(since=now - WINDOW),
        set_aside=set_aside_counts(),
    )
