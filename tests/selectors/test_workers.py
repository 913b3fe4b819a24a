"""Worker presence on the broker's Redis: what workers announce (services/workers.py), how long
an announcement counts, and which jobs' queues have no consumer (selectors/workers.py). The
announcements here are written as a worker writes them; tests/integration/test_worker_presence.py
runs real workers."""

import time
import uuid
from contextlib import ExitStack
from datetime import timedelta

import pytest
from django.utils import timezone

from batchjobs.models import BatchLog, ExecutionStatus, Trigger
from batchjobs.selectors.workers import (
    JOBS_NAMED_PER_QUEUE,
    queues_consumed,
    queues_without_consumer,
    workers_present,
)
from batchjobs.services.schedules import schedule_create
from batchjobs.services.workers import worker_presence_withdraw
from tests.support.factories import handler_job
from tests.support.presence import broker_unreachable, worker_announced

pytestmark = pytest.mark.django_db


@pytest.fixture
def announce():
    """Announce a worker of this test (`announce(queues, pool=..., concurrency=...)` returns its
    name); all are withdrawn afterwards."""
    with ExitStack() as stack:
        yield lambda queues, **kwargs: stack.enter_context(worker_announced(queues, **kwargs))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def scheduled(job, *, paused: bool = False):
    return schedule_create(job=job, kind="interval", interval_every=1, interval_unit="days",
                           start_at=timezone.now() + timedelta(days=1), paused=paused)  # fmt: skip


def test_an_announced_worker_is_present_with_its_queues_pool_and_concurrency(announce):
    queue = unique("q")
    name = announce([queue, "batchjobs"], pool="gevent", concurrency=500)

    (seen,) = [worker for worker in workers_present() or [] if worker.name == name]

    assert seen.queues == tuple(sorted([queue, "batchjobs"]))
    assert (seen.pool, seen.concurrency) == ("gevent", 500)
    assert 0 <= seen.silent_seconds < 1
    assert queue in (queues_consumed() or set())


def test_a_worker_silent_longer_than_the_timeout_is_gone_and_a_withdrawn_one_at_once(
    announce, settings
):
    settings.BATCHJOBS_WORKER_PRESENCE_TIMEOUT_SECONDS = 0.5
    silent, withdrawn = unique("silent"), unique("withdrawn")
    announce([silent])
    withdrawn_name = announce([withdrawn])
    assert {silent, withdrawn} <= (queues_consumed() or set())

    worker_presence_withdraw(worker=withdrawn_name)
    assert withdrawn not in (queues_consumed() or set())
    assert silent in (queues_consumed() or set())

    time.sleep(0.6)
    assert silent not in (queues_consumed() or set())


def test_queues_without_consumer_name_the_jobs_with_runs_due_or_waiting(announce):
    lonely, consumed = unique("lonely"), unique("consumed")
    announce([consumed])
    # flagged: enabled and scheduled; disabled but a run already waits
    scheduled_job = handler_job("noop", name=unique("scheduled"), queue=lonely)
    scheduled(scheduled_job)
    waiting_job = handler_job("noop", name=unique("waiting"), queue=lonely, enabled=False)
    BatchLog.objects.create(job=waiting_job, trigger=Trigger.API, status=ExecutionStatus.QUEUED)
    # not flagged: nothing due (no schedule; a paused one; disabled), or a consumed queue
    handler_job("noop", name=unique("idle"), queue=lonely)
    scheduled(handler_job("noop", name=unique("paused"), queue=lonely), paused=True)
    scheduled(handler_job("noop", name=unique("disabled"), queue=lonely, enabled=False))
    scheduled(handler_job("noop", name=unique("served"), queue=consumed))

    rows = {row.queue: row for row in queues_without_consumer(consumed=queues_consumed())}

    assert consumed not in rows
    assert rows[lonely].job_count == 2
    assert rows[lonely].jobs == sorted(
        [(scheduled_job.pk, scheduled_job.name), (waiting_job.pk, waiting_job.name)],
        key=lambda job: job[1],
    )


def test_a_queue_with_many_jobs_names_a_few_and_counts_them_all():
    lonely = unique("crowded")
    for number in range(JOBS_NAMED_PER_QUEUE + 3):
        scheduled(handler_job("noop", name=f"{lonely}-{number:02d}", queue=lonely))

    (row,) = [row for row in queues_without_consumer(consumed=frozenset()) if row.queue == lonely]

    assert row.job_count == JOBS_NAMED_PER_QUEUE + 3
    assert len(row.jobs) == JOBS_NAMED_PER_QUEUE and row.jobs_not_named == 3
    assert row.jobs[0][1] == f"{lonely}-00"


def test_presence_is_unknown_when_the_broker_cannot_be_reached():
    with broker_unreachable():
        assert workers_present() is None
        assert queues_consumed() is None
