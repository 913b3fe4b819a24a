"""The relay re-sends what the broker no longer holds, at once, however long the queue, and
leaves alone what it holds (DESIGN.md §4, invariant 4); a row it cannot send is set aside."""

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from batchjobs.execution.publish import BROKER_READ_MAX_MESSAGES, Route, executions_publish
from batchjobs.execution.relay import executions_relay
from batchjobs.models import BatchLog, ExecutionStatus
from tests.support.factories import handler_job, start

from .conftest import QUEUE, execution_id

pytestmark = pytest.mark.django_db
RELAY_AFTER_SECONDS = 60
# Ids of no execution, for messages that only make a queue long.
FILLER_IDS = 10**12


@pytest.fixture(autouse=True)
def relay_after(settings):
    settings.BATCHJOBS_RELAY_AFTER_SECONDS = RELAY_AFTER_SECONDS


@pytest.fixture
def unacked(broker_channel, redis_client):
    """Put a message where kombu keeps what a worker took and has not acknowledged (a hash by
    delivery tag, and the time it was taken), as taken `seconds_ago`; removed on exit."""
    tags = []

    def take(raw: bytes, *, seconds_ago: float) -> None:
        tag = f"test-relay-{len(tags)}"
        entry = json.dumps([json.loads(raw), QUEUE, QUEUE])
        redis_client.hset(broker_channel.unacked_key, tag, entry)
        redis_client.zadd(broker_channel.unacked_index_key, {tag: time.time() - seconds_ago})
        tags.append(tag)

    yield take
    for tag in tags:
        redis_client.hdel(broker_channel.unacked_key, tag)
        redis_client.zrem(broker_channel.unacked_index_key, tag)


def sent_long_ago(*executions: BatchLog) -> None:
    """Sent when due, five minutes ago, and not claimed since."""
    long_ago = timezone.now() - timedelta(minutes=5)
    BatchLog.objects.filter(pk__in=[e.pk for e in executions]).update(
        published_at=long_ago, next_attempt_at=long_ago
    )


def ids(executions) -> list[int]:
    return [e.pk for e in executions]


def test_one_pass_resends_the_deleted_messages_not_the_held_ones_though_the_queue_waits(
    raw_queue, redis_client
):
    # given a backlog in which some stale executions' messages were deleted
    job = handler_job("noop", queue=QUEUE, priority=0)
    held, lost, fresh = [start(job) for _ in range(4)], [start(job) for _ in range(3)], [start(job)]
    executions_publish(ids(held + lost + fresh))
    for raw in redis_client.lrange(QUEUE, 0, -1):
        if execution_id(json.loads(raw)) in ids(lost):
            redis_client.lrem(QUEUE, 0, raw)
    sent_long_ago(*held, *lost)
    # when
    assert executions_relay() == 3
    # then the lost ones are sent, ahead of the backlog; the held ones are not doubled
    assert [execution_id(m) for m in raw_queue()] == ids(lost + held + fresh)
    assert executions_relay() == 0


def test_after_redis_lost_everything_a_pass_resends_every_stale_run_ahead_of_the_new_backlog(
    raw_queue, redis_client
):
    job = handler_job("noop", queue=QUEUE, priority=0)
    wiped = [start(job) for _ in range(5)]
    executions_publish(ids(wiped))
    redis_client.delete(QUEUE)  # Redis restarted empty
    backlog = [start(job) for _ in range(10)]
    executions_publish(ids(backlog))  # fires since: the queue is not empty
    sent_long_ago(*wiped)
    assert executions_relay() == 5
    assert [execution_id(m) for m in raw_queue()] == ids(wiped + backlog)


def test_a_message_a_worker_took_lately_is_held_an_older_one_is_lost(
    raw_queue, redis_client, unacked
):
    job = handler_job("noop", queue=QUEUE, priority=0)
    reserved, abandoned = start(job), start(job)
    executions_publish([reserved.pk, abandoned.pk])
    # taken by workers: one a moment ago (a live worker claims it within moments), one before
    # the relay delay (a worker that died holding it; kombu would give it back in an hour)
    unacked(redis_client.rpop(QUEUE), seconds_ago=1)
    unacked(redis_client.rpop(QUEUE), seconds_ago=RELAY_AFTER_SECONDS + 60)
    sent_long_ago(reserved, abandoned)
    assert executions_relay() == 1
    assert [execution_id(m) for m in raw_queue()] == [abandoned.pk]


def test_a_queue_too_long_to_read_keeps_its_stale_runs_waiting_as_before(raw_queue):
    long_queue = handler_job("noop", queue=QUEUE, priority=0)
    short_queue = handler_job("noop", queue=f"{QUEUE}-short", priority=0)
    filler = range(FILLER_IDS, FILLER_IDS + BROKER_READ_MAX_MESSAGES + 1)
    executions_publish(filler, routes=dict.fromkeys(filler, Route(QUEUE, 0, 10.0)))
    waiting, lost = start(long_queue), start(short_queue)
    sent_long_ago(waiting, lost)
    assert executions_relay() == 1
    assert BatchLog.objects.get(pk=lost.pk).published_at > timezone.now() - timedelta(minutes=1)
    assert BatchLog.objects.get(pk=waiting.pk).published_at < timezone.now() - timedelta(minutes=1)


def test_a_pass_reads_ten_thousand_waiting_messages_in_two_round_trips(raw_queue, redis_client):
    job = handler_job("noop", queue=QUEUE, priority=0)
    held, lost = start(job), start(job)
    executions_publish([held.pk, lost.pk])
    redis_client.lpop(QUEUE)  # the last pushed: `lost`'s
    filler = range(FILLER_IDS, FILLER_IDS + 10_000)
    executions_publish(filler, routes=dict.fromkeys(filler, Route(QUEUE, 0, 10.0)))
    sent_long_ago(held, lost)
    began = time.perf_counter()
    relayed = executions_relay()
    elapsed = time.perf_counter() - began
    print(f"relay pass over 10,001 waiting messages: {elapsed * 1000:.0f} ms")
    assert relayed == 1
    waiting = [execution_id(m) for m in raw_queue()]
    assert (waiting[:2], len(waiting)) == ([lost.pk, held.pk], 10_002)
    assert elapsed < 2.0  # measured well under; a round trip per message would take seconds


def test_a_run_the_broker_refuses_is_set_aside_and_the_others_are_sent_in_the_same_pass(
    raw_queue, refusing_queue
):
    # given stale runs whose messages are lost, one of them routed to a queue Redis refuses
    refused = start(handler_job("noop", queue=refusing_queue, priority=0))
    job = handler_job("noop", queue=QUEUE, priority=0)
    lost = [start(job), start(job)]
    sent_long_ago(refused, *lost)
    # when
    assert executions_relay() == 2
    # then
    assert [execution_id(m) for m in raw_queue()] == ids(lost)
    refused.refresh_from_db()
    assert refused.status == ExecutionStatus.FAILED
    assert refused.set_aside_at is not None
    assert "WRONGTYPE" in refused.set_aside_reason
    assert refused.set_aside_reason in refused.error
    assert executions_relay() == 0  # left alone from then on
