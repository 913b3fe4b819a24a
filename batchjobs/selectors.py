"""Read queries shared by the API, the command line, the admin and the dashboard.

Nothing here writes to the database. The one write, `beat_heartbeat_record`, is a Redis key that
beat refreshes so that readers can tell it is alive; it lives next to its reader so that the key's
format is defined once.
"""

import json
import os
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from django.core.cache import cache
from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery
from django.utils import timezone

from batchjobs.errors import NotFound
from batchjobs.models import (
    BatchAttempt,
    BatchJob,
    BatchLog,
    BatchSchedule,
    ExecutionStatus,
    StepExecution,
)
from batchjobs.models.execution import RUNNING_STATUSES

# Beat refreshes its key at least this often and the key lives this long: a beat that has not
# ticked for BEAT_HEARTBEAT_TTL_SECONDS is gone (its tick blocks for at most a few seconds).
BEAT_HEARTBEAT_PREFIX = "batchjobs:beat:"
BEAT_HEARTBEAT_EVERY_SECONDS = 1.0
BEAT_HEARTBEAT_TTL_SECONDS = 30
# How long a status read waits for workers to answer a ping, and for how long the answer
# stands: a dashboard polled by many people should not broadcast a ping per page view.
WORKERS_PING_SECONDS = 0.5
WORKERS_SEEN_CACHE_SECONDS = 5


# --- jobs ------------------------------------------------------------------------------------


def job_list() -> QuerySet[BatchJob]:
    """Jobs with their schedule count and their latest execution (id, status, created_at)."""
    latest = BatchLog.objects.filter(job=OuterRef("pk")).order_by("-created_at", "-id")
    schedules = (
        BatchSchedule.objects.filter(job=OuterRef("pk"))
        .order_by()
        .values("job")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return (
        BatchJob.objects.select_related("created_by")
        .annotate(
            schedule_count=Subquery(schedules[:1]),
            latest_execution_id=Subquery(latest.values("pk")[:1]),
            latest_execution_status=Subquery(latest.values("status")[:1]),
            latest_execution_created_at=Subquery(latest.values("created_at")[:1]),
        )
        .order_by("name")
    )


def job_get(*, job_id: int) -> BatchJob:
    job = job_list().filter(pk=job_id).first()
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job


def jobs_with_schedules(*, names: Iterable[str] | None = None) -> QuerySet[BatchJob]:
    """Jobs (all, or those named) with their schedules in creation order: what an export holds."""
    jobs = BatchJob.objects.prefetch_related(
        Prefetch("schedules", queryset=BatchSchedule.objects.order_by("pk"))
    ).order_by("name")
    if names is not None:
        jobs = jobs.filter(name__in=list(names))
    return jobs


# --- schedules -------------------------------------------------------------------------------


def schedule_list() -> QuerySet[BatchSchedule]:
    return BatchSchedule.objects.select_related("job").order_by("job__name", "pk")


def schedule_get(*, schedule_id: int) -> BatchSchedule:
    schedule = schedule_list().filter(pk=schedule_id).first()
    if schedule is None:
        raise NotFound(f"no schedule {schedule_id}")
    return schedule


# --- executions ------------------------------------------------------------------------------


def execution_list(
    *,
    queryset: QuerySet[BatchLog] | None = None,
    job_id: int | None = None,
    job_name: str | None = None,
    schedule_id: int | None = None,
    statuses: Iterable[str] = (),
    triggers: Iterable[str] = (),
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    set_aside: bool | None = None,
) -> QuerySet[BatchLog]:
    """Executions, newest first, narrowed by whichever filters are given (None/empty: all)."""
    executions = queryset if queryset is not None else BatchLog.objects.all()
    executions = executions.select_related("job", "created_by")
    if job_id is not None:
        executions = executions.filter(job_id=job_id)
    if job_name:
        executions = executions.filter(job__name=job_name)
    if schedule_id is not None:
        executions = executions.filter(schedule_id=schedule_id)
    statuses, triggers = list(statuses), list(triggers)
    if statuses:
        executions = executions.filter(status__in=statuses)
    if triggers:
        executions = executions.filter(trigger__in=triggers)
    if created_from is not None:
        executions = executions.filter(created_at__gte=created_from)
    if created_to is not None:
        executions = executions.filter(created_at__lt=created_to)
    if set_aside is not None:
        executions = executions.filter(set_aside_at__isnull=not set_aside)
    return executions.order_by("-created_at", "-id")


def execution_get(*, execution_id: int) -> BatchLog:
    """One execution with its attempts and steps."""
    execution = (
        BatchLog.objects.select_related("job", "created_by")
        .prefetch_related(
            Prefetch("attempt_rows", queryset=BatchAttempt.objects.order_by("number")),
            Prefetch("steps", queryset=StepExecution.objects.order_by("pk")),
        )
        .filter(pk=execution_id)
        .first()
    )
    if execution is None:
        raise NotFound(f"no execution {execution_id}")
    return execution


def execution_status_counts() -> dict[str, int]:
    """How many executions are in each status, every status listed (0 included)."""
    counts = dict(
        BatchLog.objects.order_by()
        .values("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    return {status: counts.get(status, 0) for status in ExecutionStatus.values}


# --- rows set aside --------------------------------------------------------------------------


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


# --- the scheduler ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NextDue:
    """The live schedule due first, and the job it fires."""

    schedule_id: int
    schedule_kind: str
    job_id: int
    job_name: str
    job_kind: str
    at: datetime


def next_due() -> NextDue | None:
    """The next fire of a live schedule (not paused nor set aside, of an enabled job), or
    None."""
    schedule = (
        BatchSchedule.objects.select_related("job")
        .filter(
            paused=False, next_fire_at__isnull=False, set_aside_at__isnull=True, job__enabled=True
        )
        .order_by("next_fire_at", "pk")
        .first()
    )
    if schedule is None:
        return None
    return NextDue(
        schedule_id=schedule.pk,
        schedule_kind=schedule.kind,
        job_id=schedule.job_id,
        job_name=schedule.job.name,
        job_kind=schedule.job.kind,
        at=schedule.next_fire_at,
    )


@dataclass(frozen=True)
class BeatHeartbeat:
    beat_id: str
    last_seen: datetime


@contextmanager
def _broker_redis() -> Iterator:
    """A redis-py client on the broker (REDIS_URL, or the embedded server's socket)."""
    from celery import current_app

    with current_app.connection_for_write() as connection:
        yield connection.default_channel.client


def beat_heartbeat_record(
    *, beat_id: str | None = None, ttl_seconds: float = BEAT_HEARTBEAT_TTL_SECONDS
) -> None:
    """Beat's side: say "alive" for `ttl_seconds`. Called by the scheduler at least every
    BEAT_HEARTBEAT_EVERY_SECONDS; each beat process has its own key, so HA pairs show both."""
    beat_id = beat_id or f"{socket.gethostname()}:{os.getpid()}"
    value = json.dumps({"beat_id": beat_id, "at": timezone.now().isoformat()})
    with _broker_redis() as client:
        client.set(f"{BEAT_HEARTBEAT_PREFIX}{beat_id}", value, px=int(ttl_seconds * 1000))


def beat_heartbeats() -> list[BeatHeartbeat]:
    """The beats whose heartbeat has not expired, most recently seen first."""
    with _broker_redis() as client:
        keys = list(client.scan_iter(match=f"{BEAT_HEARTBEAT_PREFIX}*", count=100))
        values = client.mget(keys) if keys else []
    beats = []
    for value in values:
        if value is None:  # expired between the scan and the read
            continue
        try:
            record = json.loads(value)
            beats.append(
                BeatHeartbeat(
                    beat_id=str(record["beat_id"]),
                    last_seen=datetime.fromisoformat(record["at"]),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue  # not ours to interpret
    return sorted(beats, key=lambda beat: beat.last_seen, reverse=True)


def workers_seen(*, timeout: float = WORKERS_PING_SECONDS) -> list[str]:
    """The Celery workers that answered a ping within `timeout` seconds (an answer up to
    WORKERS_SEEN_CACHE_SECONDS old may be returned)."""
    from celery import current_app

    def ping() -> list[str]:
        return sorted(current_app.control.inspect(timeout=timeout).ping() or {})

    return cache.get_or_set("batchjobs:workers-seen", ping, WORKERS_SEEN_CACHE_SECONDS)


@dataclass(frozen=True)
class Liveness:
    """Which beats and workers are alive, as the broker tells."""

    # False when the broker could not be asked: then beats and workers are unknown, not absent.
    broker_reachable: bool
    beats: list[BeatHeartbeat]
    workers: list[str] | None  # None when not asked (or the broker could not be)

    @property
    def beat_alive(self) -> bool:
        return bool(self.beats)


def liveness(*, ask_workers: bool = True) -> Liveness:
    """Beats whose heartbeat is fresh and, if asked, workers that answer a ping."""
    from kombu.exceptions import OperationalError
    from redis import RedisError

    try:
        beats = beat_heartbeats()
        workers = workers_seen() if ask_workers else None
    except (OperationalError, RedisError, OSError):
        return Liveness(broker_reachable=False, beats=[], workers=None)
    return Liveness(broker_reachable=True, beats=beats, workers=workers)


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
        counts=execution_status_counts(),
        next_due=next_due(),
    )
