"""Send execution messages. A message carries only the execution id; the row is the truth.

Celery's apply_async costs about 0.5 ms a message and a Redis round trip each, which caps one
beat near 1,300 fires/s (DESIGN.md §7). On Redis we therefore let Celery build one message per
(queue, priority, time limit), stamp the other ids of the batch into the text of that message,
and send them all in one pipeline of multi-value LPUSHes: the same bytes a worker would get from
apply_async, for under 30 µs a message instead of 500.
"""

import base64
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import NamedTuple

from django.conf import settings
from kombu.utils.json import dumps

from batchjobs.models import BatchJob, BatchLog

logger = logging.getLogger(__name__)

# Values per LPUSH: bounds one command's size (Redis handles a few MB per command well).
LPUSH_MAX_VALUES = 1000


class Route(NamedTuple):
    """Where an execution's message goes: its job's queue, priority and time limit."""

    queue: str
    priority: int
    timeout_seconds: float


def executions_publish_or_defer(
    execution_ids: Iterable[int], *, routes: Mapping[int, Route] | None = None
) -> bool:
    """Publish now if the broker answers; if not, leave it to the relay, which resends QUEUED
    executions not claimed within BATCHJOBS_RELAY_AFTER_SECONDS. The row is already committed,
    so a broker outage delays the run but never loses it, nor fails the request that made it."""
    try:
        executions_publish(execution_ids, routes=routes)
    except Exception:
        logger.warning("broker unavailable; the relay will send these later", exc_info=True)
        return False
    return True


def executions_publish(
    execution_ids: Iterable[int], *, routes: Mapping[int, Route] | None = None
) -> None:
    """Send one message per execution. `routes` gives each one's Route when the caller has them
    already (beat, from its claim); otherwise they are read from the jobs."""
    from batchjobs.tasks import execute

    execution_ids = sorted(execution_ids)
    if routes is None:
        routes = {
            pk: Route(*route)
            for pk, *route in BatchLog.objects.filter(pk__in=execution_ids).values_list(
                "pk", "job__queue", "job__priority", "job__timeout_seconds"
            )
        }
    groups: dict[tuple[str, int, float], list[int]] = defaultdict(list)
    for pk in execution_ids:
        if (route := routes.get(pk)) is None:
            continue  # deleted since (its job with it): nothing to run
        # Backstop for code the soft limit cannot interrupt: the pool kills the child.
        time_limit = route.timeout_seconds + settings.BATCHJOBS_HARD_TIMEOUT_GRACE_SECONDS
        groups[(route.queue, route.priority, time_limit)].append(pk)

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


def queue_depths() -> dict[str, int]:
    """Messages waiting in each queue that jobs use (and the default queue), summed over the
    Redis lists kombu keeps per priority step."""
    from celery import current_app

    queues = set(BatchJob.objects.order_by().values_list("queue", flat=True).distinct())
    queues.add(settings.CELERY_TASK_DEFAULT_QUEUE)
    with current_app.connection_for_read() as connection:
        channel = connection.default_channel
        if connection.transport.driver_type != "redis":  # only Redis is used (DESIGN.md §1)
            return {}
        keys = {
            queue: [channel._q_for_pri(queue, priority) for priority in channel.priority_steps]
            for queue in sorted(queues)
        }
        pipeline = channel.client.pipeline(transaction=False)
        for names in keys.values():
            for name in names:
                pipeline.llen(name)
        lengths = iter(pipeline.execute())
        return {queue: sum(next(lengths) for _ in names) for queue, names in keys.items()}


class _CapturedPublish:
    """The message Celery built last, kept as a JSON template, and the serialised messages to
    push, per Redis list: copies are stamped into the template's text, not re-encoded."""

    # Placeholders in the template; none needs escaping in JSON, nor can occur in a message.
    _TASK_ID = "@batchjobs:task-id@"
    _DELIVERY_TAG = "@batchjobs:delivery-tag@"
    _ARGSREPR = "@batchjobs:argsrepr@"
    _BODY = "@batchjobs:body@"

    def __init__(self) -> None:
        self.pending: dict[str, list[str]] = defaultdict(list)
        self._key = ""
        self._template = ""
        self._body_tail = ""  # the task body after its args: `, {kwargs}, {embed}]`

    def capture(self, key: str, message: dict) -> None:
        embed = json.loads(base64.b64decode(message["body"]))[2]
        self._body_tail = ", {}, " + json.dumps(embed) + "]"
        headers = dict(message["headers"], id=self._TASK_ID, root_id=self._TASK_ID)
        headers["argsrepr"] = self._ARGSREPR
        properties = dict(
            message["properties"], correlation_id=self._TASK_ID, delivery_tag=self._DELIVERY_TAG
        )
        template = dict(message, body=self._BODY, headers=headers, properties=properties)
        self._key, self._template = key, dumps(template)
        self.pending[key].append(dumps(message))

    def send_copy(self, execution_id: int) -> None:
        task_id = str(uuid.uuid4())
        body = f"[[{execution_id}]{self._body_tail}".encode()
        self.pending[self._key].append(
            self._template.replace(self._TASK_ID, task_id)
            .replace(self._DELIVERY_TAG, str(uuid.uuid4()))
            .replace(self._ARGSREPR, f"[{execution_id}]")
            .replace(self._BODY, base64.b64encode(body).decode())
        )


@contextmanager
def _redis_pipeline(channel) -> Iterator[_CapturedPublish]:
    """Route the channel's deliveries into one Redis pipeline, sent on exit, with one LPUSH of
    many values per list (as kombu's LPUSH of one, in the same order)."""
    captured = _CapturedPublish()

    def put(queue: str, message: dict, **kwargs) -> None:
        # kombu's Channel._put, but into the pipeline (kombu/transport/redis.py).
        priority = channel._get_message_priority(message, reverse=False)
        captured.capture(channel._q_for_pri(queue, priority), message)

    channel._put = put
    try:
        yield captured
        pipeline = channel._create_client().pipeline(transaction=False)
        for key, messages in captured.pending.items():
            for start in range(0, len(messages), LPUSH_MAX_VALUES):
                pipeline.lpush(key, *messages[start : start + LPUSH_MAX_VALUES])
        pipeline.execute()
    finally:
        del channel._put


@contextmanager
def _no_pipeline() -> Iterator[None]:
    yield None
