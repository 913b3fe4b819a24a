"""One job's history, as its page shows it: executions per day by status over the last 30
days, run time percentiles (p50, p95) and the success rate over 7 and 30 days, and the latest
runs. Three queries, each bounded by the job's (job, -created_at) index and the window.

Days are calendar days in the given zone (the operator's). Percentiles interpolate between
ranks, as PostgreSQL's percentile_cont does, over the latest DURATION_SAMPLE_LIMIT completed
runs of the window: computed in the database on PostgreSQL, in Python elsewhere (SQLite,
MariaDB). The bound keeps a job with 100,000 runs a month as fast to show as one with 100."""

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from django.db import connection
from django.db.models.functions import Substr, TruncDate
from django.utils import timezone

from batchjobs.models import BatchLog, ExecutionStatus
from batchjobs.models.clock import database_now

from .status_counts import StatusCounts, counts_per_period

HISTORY_DAYS = 30
# The windows the percentiles and the success rate are given for, in days (ending today).
WINDOWS = (7, 30)
RECENT_RUNS = 10
# Percentiles are of at most this many completed runs, the latest (a sort of 100,000 durations
# took 212 ms on PostgreSQL; of 10,000, a tenth of that).
DURATION_SAMPLE_LIMIT = 10_000
# Runs that ended and count for the success rate (a SKIPPED fire did not run).
ENDED_STATUSES = (
    ExecutionStatus.COMPLETED,
    ExecutionStatus.FAILED,
    ExecutionStatus.STOPPED,
    ExecutionStatus.ABANDONED,
)
ERROR_HEAD_LENGTH = 200


@dataclass(frozen=True)
class DayCounts(StatusCounts):
    day: date


@dataclass(frozen=True)
class WindowStats:
    days: int
    runs: int
    ended: int
    completed: int
    # Over completed runs with both times; None when there is none.
    p50: float | None
    p95: float | None
    # Whether the percentiles come from the latest DURATION_SAMPLE_LIMIT runs only.
    sampled: bool

    @property
    def success_rate(self) -> float | None:
        """Completed over ended runs (0..1); None when none ended."""
        return self.completed / self.ended if self.ended else None


@dataclass(frozen=True)
class JobHistory:
    days: list[DayCounts]  # the oldest first, today last
    windows: list[WindowStats]  # as WINDOWS
    # The latest first; each with .error_head, the start of its error.
    recent: Sequence[BatchLog]


def _percentile(values: list[float], fraction: float) -> float:
    """percentile_cont of sorted `values`: linear between the two nearest ranks."""
    position = fraction * (len(values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def _durations_postgresql(
    job_id: int, starts: list[datetime]
) -> tuple[list[tuple[float | None, float | None]], bool]:
    """(p50, p95) per window start, in one pass over the longest window's latest completed
    runs, and whether they were cut at DURATION_SAMPLE_LIMIT."""
    meta = BatchLog._meta
    quote = connection.ops.quote_name
    column = {
        field.name: quote(str(field.column))
        for field in meta.concrete_fields
        if field.name in ("job", "status", "created_at", "started_at", "finished_at")
    }
    created, started, finished = column["created_at"], column["started_at"], column["finished_at"]
    figures = ", ".join(
        f"percentile_cont({fraction}) WITHIN GROUP (ORDER BY seconds) "
        f"FILTER (WHERE {created} >= %s)"
        for _start in starts
        for fraction in (0.5, 0.95)
    )
    sql = (
        f"SELECT count(*), {figures} FROM (SELECT {created}, "
        f"EXTRACT(EPOCH FROM {finished} - {started}) AS seconds FROM {quote(meta.db_table)} "
        f"WHERE {column['job']} = %s AND {column['status']} = %s AND {created} >= %s "
        f"AND {started} IS NOT NULL AND {finished} IS NOT NULL "
        f"ORDER BY {created} DESC LIMIT %s) AS runs"
    )
    params: list[datetime | int | str] = [
        *(start for start in starts for _fraction in (0.5, 0.95)),
        job_id,
        ExecutionStatus.COMPLETED.value,
        min(starts),
        DURATION_SAMPLE_LIMIT,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    sampled, values = row[0], [None if value is None else float(value) for value in row[1:]]
    pairs = [(values[2 * index], values[2 * index + 1]) for index in range(len(starts))]
    return pairs, sampled >= DURATION_SAMPLE_LIMIT


def _durations_sampled(
    job_id: int, starts: list[datetime]
) -> tuple[list[tuple[float | None, float | None]], bool]:
    """(p50, p95) per window start from the latest runs of the longest window, and whether
    the sample was cut at DURATION_SAMPLE_LIMIT."""
    rows = list(
        BatchLog.objects.filter(
            job_id=job_id,
            status=ExecutionStatus.COMPLETED,
            created_at__gte=min(starts),
            started_at__isnull=False,
            finished_at__isnull=False,
        )
        .order_by("-created_at")
        .values_list("created_at", "started_at", "finished_at")[:DURATION_SAMPLE_LIMIT]
    )
    result: list[tuple[float | None, float | None]] = []
    for start in starts:
        values = sorted(
            (finished - started).total_seconds()
            for created, started, finished in rows
            if created >= start and started and finished  # both set, as filtered
        )
        if values:
            result.append((_percentile(values, 0.5), _percentile(values, 0.95)))
        else:
            result.append((None, None))
    return result, len(rows) >= DURATION_SAMPLE_LIMIT


def job_history(
    *, job_id: int, zone: tzinfo | None = None, now: datetime | None = None
) -> JobHistory:
    zone = zone or timezone.get_current_timezone()
    now = now or database_now()
    today = timezone.localtime(now, zone).date()
    days = [today - timedelta(days=HISTORY_DAYS - 1 - index) for index in range(HISTORY_DAYS)]

    def midnight(day: date) -> datetime:
        return datetime.combine(day, datetime.min.time(), tzinfo=zone)

    by_day: dict[date, dict[str, int]] = counts_per_period(
        BatchLog.objects.filter(job_id=job_id, created_at__gte=midnight(days[0])),
        TruncDate("created_at", tzinfo=zone),
    )

    starts = [midnight(today - timedelta(days=window - 1)) for window in WINDOWS]
    if connection.vendor == "postgresql":
        percentiles, sampled = _durations_postgresql(job_id, starts)
    else:
        percentiles, sampled = _durations_sampled(job_id, starts)
    windows = []
    for window, (p50, p95) in zip(WINDOWS, percentiles, strict=True):
        counts: dict[str, int] = defaultdict(int)
        for day in days[-window:]:
            for status, n in by_day.get(day, {}).items():
                counts[status] += n
        windows.append(
            WindowStats(
                days=window,
                runs=sum(counts.values()),
                ended=sum(counts[status] for status in ENDED_STATUSES),
                completed=counts[ExecutionStatus.COMPLETED],
                p50=p50,
                p95=p95,
                sampled=sampled,
            )
        )

    recent = list(
        BatchLog.objects.filter(job_id=job_id)
        .order_by("-created_at", "-id")
        .only(
            "id",
            "job_id",
            "status",
            "trigger",
            "created_at",
            "started_at",
            "finished_at",
            "attempts",
            "max_attempts",
        )  # fmt: skip
        .annotate(error_head=Substr("error", 1, ERROR_HEAD_LENGTH))[:RECENT_RUNS]
    )
    return JobHistory(
        days=[DayCounts(day=day, counts=by_day.get(day, {})) for day in days],
        windows=windows,
        recent=recent,
    )
