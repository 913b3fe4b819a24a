"""The pipelined publisher sends what apply_async would, and workers run it."""

import base64
import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from batchjobs.execution.publish import LPUSH_MAX_VALUES, executions_publish
from batchjobs.models import BatchLog, ExecutionStatus
from batchjobs.services.executions import executions_relay
from batchjobs.tasks import execute
from tests.factories import handler_job, start
from tests.processes import wait_until

QUEUE = "test-publish"


@pytest.fixture
def raw_queue():
    """Read and clear the raw Redis lists behind QUEUE (all its priority sub-lists)."""
    with execute.app.connection_for_write() as connection:
        client = connection.default_channel.client

        def messages(*, take: bool = False) -> list[dict]:
            """The messages in consumption order (kombu pops from the right); `take` empties
            the queue after reading it."""
            found = []
            for key in client.keys(f"{QUEUE}*"):
                found += [json.loads(raw) for raw in reversed(client.lrange(key, 0, -1))]
                if take:
                    client.delete(key)
            return found

        yield messages
        for key in client.keys(f"{QUEUE}*"):
            client.delete(key)


@pytest.mark.django_db
def test_stamped_copies_match_what_apply_async_sends(raw_queue):
    job = handler_job("noop", queue=QUEUE, priority=3, timeout_seconds=20)
    executions = [start(job) for _ in range(5)]
    executions_publish([e.pk for e in executions])
    messages = raw_queue()
    assert len(messages) == 5
    by_id = {json.loads(base64.b64decode(m["body"]))[0][0]: m for m in messages}
    assert sorted(by_id) == sorted(e.pk for e in executions)
    reference, *copies = [by_id[e.pk] for e in sorted(executions, key=lambda e: e.pk)]
    ids = {reference["headers"]["id"]}
    for copy in copies:
        execution_id = json.loads(base64.b64decode(copy["body"]))[0][0]
        assert copy["headers"]["argsrepr"] == f"[{execution_id}]"
        assert copy["headers"]["id"] == copy["headers"]["root_id"]
        assert copy["properties"]["correlation_id"] == copy["headers"]["id"]
        ids.add(copy["headers"]["id"])
        assert copy["headers"]["timelimit"] == [
            20 + settings.BATCHJOBS_HARD_TIMEOUT_GRACE_SECONDS,
            None,
        ]
        same = {"task", "lang", "ignore_result", "retries", "origin", "timelimit"}
        assert {k: copy["headers"][k] for k in same} == {k: reference["headers"][k] for k in same}
        assert copy["properties"]["priority"] == reference["properties"]["priority"] == 3
        assert copy["properties"]["delivery_info"] == reference["properties"]["delivery_info"]
        assert copy["content-type"] == "application/json"
    assert len(ids) == 5  # every message its own task id


@pytest.mark.django_db(transaction=True, databases="__all__")
@pytest.mark.integration
def test_a_batch_published_at_once_runs_every_execution_once(worker):
    job = handler_job("noop")
    executions = [start(job) for _ in range(30)]
    executions_publish([e.pk for e in executions])  # 30 more messages: duplicates of the first
    wait_until(
        lambda: BatchLog.objects.filter(job=job, status=ExecutionStatus.COMPLETED).count() == 30,
        timeout=30,
    )
    assert all(e.attempt_rows.count() == 1 for e in BatchLog.objects.filter(job=job))


def _execution_id(message: dict) -> int:
    return json.loads(base64.b64decode(message["body"]))[0][0]


@pytest.mark.django_db
def test_a_batch_is_consumed_in_execution_order(raw_queue):
    job = handler_job("noop", queue=QUEUE, priority=0)
    executions = [start(job) for _ in range(LPUSH_MAX_VALUES + 5)]  # two LPUSH commands
    executions_publish([e.pk for e in reversed(executions)])
    assert [_execution_id(m) for m in raw_queue()] == [e.pk for e in executions]


@pytest.mark.django_db
def test_publish_skips_an_execution_deleted_since(raw_queue):
    job = handler_job("noop", queue=QUEUE)
    kept, deleted = start(job), start(job)
    BatchLog.objects.filter(pk=deleted.pk).delete()
    executions_publish([kept.pk, deleted.pk])
    assert [_execution_id(m) for m in raw_queue()] == [kept.pk]


@pytest.mark.django_db
def test_relay_resends_a_stale_execution_once_its_queue_has_drained(raw_queue, settings):
    settings.BATCHJOBS_RELAY_AFTER_SECONDS = 60
    job = handler_job("noop", queue=QUEUE)
    waiting, stale = start(job), start(job)
    executions_publish([waiting.pk])  # a backlog: one message not yet taken by any worker
    long_ago = timezone.now() - timedelta(minutes=5)
    BatchLog.objects.filter(pk=stale.pk).update(published_at=long_ago, next_attempt_at=long_ago)
    assert executions_relay() == 0
    assert [_execution_id(m) for m in raw_queue(take=True)] == [waiting.pk]
    assert executions_relay() == 1
    assert [_execution_id(m) for m in raw_queue()] == [stale.pk]
