"""Send execution messages. A message carries only the execution id; the row is the truth.

Celery's apply_async costs about 0.5 ms a message and a Redis round trip each, which caps one
beat near 1,300 fires/s (DESIGN.md §7). On Redis we therefore let Celery build one message per
(queue, priority, time limit) and stamp copies of it for the other ids of the batch, sending
them all in one pipeline: the same bytes a worker would get from apply_async, ~20x faster.
"""

import base64
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from django.conf import settings
from kombu.utils.json import dumps

from batchjobs.models import BatchLog

logger = logging.getLogger(__name__)


def executions_publish_or_defer(execution_ids: Iterable[int]) -> bool:
    """Publish now if the broker answers; if not, leave it to the relay, which resends QUEUED
    executions not claimed within BATCHJOBS_RELAY_AFTER_SECONDS. The row is already committed,
    so a broker outage delays the run but never loses it, nor fails the request that made it."""
    try:
        executions_publish(execution_ids)
    except Exception:
        logger.warning("broker unavailable; the relay will send these later", exc_info=True)
        return False
    return True


def executions_publish(execution_ids: Iterable[int]) -> None:
    from batchjobs.tasks import execute

    groups: dict[tuple[str, int, float], list[int]] = defaultdict(list)
    rows = (
        BatchLog.objects.filter(pk__in=list(execution_ids))
        .order_by("pk")
        .values_list("pk", "job__queue", "job__priority", "job__timeout_seconds")
    )
    for pk, queue, priority, timeout_seconds in rows:
        # Backstop for code the soft limit cannot interrupt: the pool kills the child.
        time_limit = timeout_seconds + settings.BATCHJOBS_HARD_TIMEOUT_GRACE_SECONDS
        groups[(queue, priority, time_limit)].append(pk)

    with execute.app.producer_or_acquire() as producer:
        redis = producer.connection.transport.driver_type == "redis"
        with _redis_pipeline(producer.channel) if redis else _no_pipeline() as captured:
            for (queue, priority, time_limit), ids in groups.items():
                for index, pk in enumerate(ids):
                    if index == 0 or captured is None:
                        execute.apply_async(
                            args=[pk], queue=queue, priority=priority, time_limit=time_limit,
                            producer=producer,
                        )  # fmt: skip
                    else:
                        captured.send_copy(pk)


class _CapturedPublish:
    """The message Celery built last, and a way to send stamped copies of it."""

    def __init__(self, send: Callable[[str, dict], None]) -> None:
        self._send = send
        self.key: str | None = None
        self.message: dict | None = None
        self._embed: dict | None = None

    def capture(self, key: str, message: dict) -> None:
        self.key, self.message = key, message
        self._embed = json.loads(base64.b64decode(message["body"]))[2]
        self._send(key, message)

    def send_copy(self, execution_id: int) -> None:
        task_id = str(uuid.uuid4())
        headers = dict(self.message["headers"])
        headers.update(id=task_id, root_id=task_id, argsrepr=f"[{execution_id}]")
        properties = dict(self.message["properties"])
        properties.update(correlation_id=task_id, delivery_tag=str(uuid.uuid4()))
        body = json.dumps([[execution_id], {}, self._embed]).encode()
        message = dict(
            self.message,
            body=base64.b64encode(body).decode(),
            headers=headers,
            properties=properties,
        )
        self._send(self.key, message)


@contextmanager
def _redis_pipeline(channel) -> Iterator[_CapturedPublish]:
    """Route the channel's deliveries into one Redis pipeline, sent on exit."""
    client = channel._create_client()
    pipeline = client.pipeline(transaction=False)
    captured = _CapturedPublish(lambda key, message: pipeline.lpush(key, dumps(message)))

    def put(queue: str, message: dict, **kwargs) -> None:
        # kombu's Channel._put, but into the pipeline (kombu/transport/redis.py).
        priority = channel._get_message_priority(message, reverse=False)
        captured.capture(channel._q_for_pri(queue, priority), message)

    channel._put = put
    try:
        yield captured
        pipeline.execute()
    finally:
        del channel._put


@contextmanager
def _no_pipeline() -> Iterator[None]:
    yield None
