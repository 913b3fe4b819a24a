"""The pipelined publisher sends what apply_async would, and workers run it."""

import os
import subprocess
import sys

import pytest
from django.conf import settings
from redis.exceptions import ResponseError

from batchjobs.execution.publish import LPUSH_MAX_VALUES, executions_publish
from batchjobs.models import BatchLog, ExecutionStatus
from tests.support.factories import handler_job, start
from tests.support.processes import wait_until

from .conftest import QUEUE, execution_id


@pytest.mark.django_db
def test_stamped_copies_match_what_apply_async_sends(raw_queue):
    job = handler_job("noop", queue=QUEUE, priority=3, timeout_seconds=20)
    executions = [start(job) for _ in range(5)]
    executions_publish([e.pk for e in executions])
    messages = raw_queue()
    assert len(messages) == 5
    by_id = {execution_id(m): m for m in messages}
    assert sorted(by_id) == sorted(e.pk for e in executions)
    reference, *copies = [by_id[e.pk] for e in sorted(executions, key=lambda e: e.pk)]
    ids = {reference["headers"]["id"]}
    for copy in copies:
        assert copy["headers"]["argsrepr"] == f"[{execution_id(copy)}]"
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


@pytest.mark.django_db
def test_a_batch_is_consumed_in_execution_order(raw_queue):
    job = handler_job("noop", queue=QUEUE, priority=0)
    executions = [start(job) for _ in range(LPUSH_MAX_VALUES + 5)]  # two LPUSH commands
    executions_publish([e.pk for e in reversed(executions)])
    assert [execution_id(m) for m in raw_queue()] == [e.pk for e in executions]


@pytest.mark.django_db
def test_publish_skips_an_execution_deleted_since(raw_queue):
    job = handler_job("noop", queue=QUEUE)
    kept, deleted = start(job), start(job)
    BatchLog.objects.filter(pk=deleted.pk).delete()
    executions_publish([kept.pk, deleted.pk])
    assert [execution_id(m) for m in raw_queue()] == [kept.pk]


@pytest.mark.django_db
def test_ahead_of_the_backlog_the_messages_are_the_next_popped_in_order(raw_queue):
    job = handler_job("noop", queue=QUEUE, priority=0)
    waiting = [start(job) for _ in range(3)]
    overdue = [start(job) for _ in range(LPUSH_MAX_VALUES + 5)]  # two RPUSH commands
    executions_publish([e.pk for e in waiting])
    executions_publish([e.pk for e in reversed(overdue)], ahead_of_backlog=True)
    assert [execution_id(m) for m in raw_queue()] == [e.pk for e in overdue + waiting]


@pytest.mark.django_db
def test_a_route_redis_refuses_fails_its_own_messages_and_the_others_are_sent(
    raw_queue, refusing_queue
):
    refused_job, job = handler_job("noop", queue=refusing_queue), handler_job("noop", queue=QUEUE)
    before, refused, after = start(job), start(refused_job), start(job)
    failed = executions_publish([before.pk, refused.pk, after.pk])
    assert list(failed) == [refused.pk]
    assert "WRONGTYPE" in str(failed[refused.pk])
    assert [execution_id(m) for m in raw_queue()] == [before.pk, after.pk]


@pytest.mark.django_db
def test_a_list_redis_refuses_in_the_pipeline_fails_its_own_messages(
    raw_queue, redis_client, refusing_queue
):
    job = handler_job("noop", queue=QUEUE)
    refused_job = handler_job("noop", queue=refusing_queue, priority=0)
    redis_client.delete(refusing_queue)
    executions_publish([start(refused_job).pk])  # kombu has declared the queue: no check again
    redis_client.delete(refusing_queue)
    redis_client.set(refusing_queue, "not a list")
    refused, sent = start(refused_job), start(job)
    failed = executions_publish([refused.pk, sent.pk])
    assert list(failed) == [refused.pk]
    assert isinstance(failed[refused.pk], ResponseError)  # from the pipeline, not apply_async
    assert [execution_id(m) for m in raw_queue()] == [sent.pk]


def test_a_process_that_never_imported_the_tasks_finds_them_by_name():
    """The web and the command line never import batchjobs/tasks.py, which execution may not
    import (it sits below it): publishing looks the tasks up by their registered names."""
    script = (
        "import sys, django; django.setup(); "
        "assert 'batchjobs.tasks' not in sys.modules; "
        "from batchjobs.execution import publish; "
        "names = (publish.EXECUTE_TASK, publish.EXECUTE_PARTITION_TASK, "
        "publish.NOTIFICATION_SEND_TASK); "
        "print(*(publish._task(name).name for name in names))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "batchjobs.execute",
        "batchjobs.execute_partition",
        "batchjobs.notification_send",
    ]
