"""Which workers are present and which queues they consume, as the workers announce it in the
broker's Redis (services/workers.py writes it; batchjobs/tasks.py's WorkerPresence step calls
it in every worker): what lets the admin, the API and the dashboard flag a job whose queue no
running worker consumes, instead of leaving its runs to wait silently.

The record: a hash WORKERS_KEY of worker name -> JSON {queues, pool, concurrency, pid}, and a
sorted set WORKERS_SEEN_KEY of worker name -> when it last announced, by Redis's own clock, so
that the age of an entry does not depend on the clocks of the machines that read and write it.
A worker silent for BATCHJOBS_WORKER_PRESENCE_TIMEOUT_SECONDS counts as gone.

Every read answers None, "unknown", when Redis cannot be asked: never an error for the page."""

import json
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q

from batchjobs.models import BatchJob, BatchLog, BatchSchedule, ExecutionStatus
from batchjobs.scheduling.heartbeat import broker_redis

logger = logging.getLogger(__name__)

WORKERS_KEY = "batchjobs:workers"
WORKERS_SEEN_KEY = "batchjobs:workers:seen"
# A queue without a consumer names at most this many of its jobs (and counts them all).
JOBS_NAMED_PER_QUEUE = 10


def presence_store_errors() -> tuple[type[BaseException], ...]:
    """What reading or writing the record raises when the broker's Redis cannot be reached:
    kombu's OperationalError (its connect retries gave up), redis-py's errors, socket errors."""
    from kombu.exceptions import OperationalError
    from redis import RedisError

    return (OperationalError, RedisError, OSError)


@dataclass(frozen=True)
class WorkerSeen:
    name: str  # Celery's node name, e.g. lane@host
    queues: tuple[str, ...]
    pool: str  # prefork, gevent, threads, solo
    concurrency: int | None
    silent_seconds: float  # since its last announcement


def workers_present() -> list[WorkerSeen] | None:
    """The workers that announced themselves within the presence timeout, by name; None when
    the broker's Redis cannot be asked."""
    try:
        with broker_redis() as client:
            pipe = client.pipeline(transaction=True)
            pipe.time()
            pipe.zrange(WORKERS_SEEN_KEY, 0, -1, withscores=True)
            pipe.hgetall(WORKERS_KEY)
            (seconds, micros), seen, records = pipe.execute()
    except presence_store_errors() as exc:
        logger.warning("worker presence unknown: %s", exc)
        return None
    now = seconds + micros / 1_000_000
    timeout = settings.BATCHJOBS_WORKER_PRESENCE_TIMEOUT_SECONDS
    present = []
    for raw_name, seen_at in seen:
        silent = max(0.0, now - seen_at)
        raw_record = records.get(raw_name)
        if silent > timeout or raw_record is None:
            continue
        try:
            record = json.loads(raw_record)
            queues = tuple(str(queue) for queue in record["queues"])
            concurrency = record.get("concurrency")
            present.append(
                WorkerSeen(
                    name=_text(raw_name),
                    queues=queues,
                    pool=str(record.get("pool", "")),
                    concurrency=concurrency if isinstance(concurrency, int) else None,
                    silent_seconds=silent,
                )
            )
        except (ValueError, KeyError, TypeError):
            continue  # not a record this code wrote
    return sorted(present, key=lambda worker: worker.name)


def queues_consumed() -> frozenset[str] | None:
    """The queues at least one present worker consumes; None when unknown."""
    return queues_consumed_by(workers_present())


def queues_consumed_by(workers: list[WorkerSeen] | None) -> frozenset[str] | None:
    if workers is None:
        return None
    return frozenset(queue for worker in workers for queue in worker.queues)


def queue_consumed(queue: str, consumed: frozenset[str] | None) -> bool | None:
    """Whether a present worker consumes `queue`, given queues_consumed()'s answer."""
    return None if consumed is None else queue in consumed


@dataclass(frozen=True)
class QueueWithoutConsumer:
    queue: str
    job_count: int
    jobs: list[tuple[int, str]]  # (id, name) of the first JOBS_NAMED_PER_QUEUE, by name

    @property
    def jobs_not_named(self) -> int:
        return self.job_count - len(self.jobs)


def jobs_with_runs_due() -> Q:
    """Jobs that have runs waiting or coming: enabled with a schedule that still fires, or with
    a QUEUED run already (read through the status index, not each job's history)."""
    live_schedule = BatchSchedule.objects.filter(
        job=OuterRef("pk"), paused=False, next_fire_at__isnull=False
    )
    queued = BatchLog.objects.filter(status=ExecutionStatus.QUEUED).values("job_id")
    return (Q(enabled=True) & Exists(live_schedule)) | Q(pk__in=queued)


def queues_without_consumer(*, consumed: frozenset[str]) -> list[QueueWithoutConsumer]:
    """The queues of jobs with runs due or waiting (jobs_with_runs_due) that no present worker
    consumes, by queue name, each with its jobs."""
    waiting = BatchJob.objects.filter(jobs_with_runs_due()).exclude(queue__in=consumed)
    counts = dict(
        waiting.order_by().values("queue").annotate(n=Count("pk")).values_list("queue", "n")
    )
    return [
        QueueWithoutConsumer(
            queue=queue,
            job_count=counts[queue],
            jobs=list(
                waiting.filter(queue=queue)
                .order_by("name")
                .values_list("pk", "name")[:JOBS_NAMED_PER_QUEUE]
            ),
        )
        for queue in sorted(counts)
    ]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
