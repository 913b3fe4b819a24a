"""Send execution messages. A message carries only the execution id; the row is the truth.

Celery's apply_async costs about 0.5 ms a message and a Redis round trip each, which caps one
beat near 1,300 fires/s (DESIGN.md §7). On Redis we therefore let Celery build one message per
(queue, priority, time limit), stamp the other ids of the batch into the text of that message,
and send them all in one pipeline of multi-value LPUSHes: the same bytes a worker would get from
apply_async, for under 30 µs a message instead of 500.

A route Celery or Redis refuses fails the messages of that route only: they are returned with
the error, and the others are sent. A broker outage raises: the caller tries again later.

Execution sits below the Celery tasks (DESIGN.md §5): this module, the one that publishes,
sends them by the names batchjobs/tasks.py registers, from the app's registry.
"""

import base64
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

from celery import Task, current_app
from django.conf import settings
from kombu.utils.json import dumps

from batchjobs.models import BatchJob, BatchLog

logger = logging.getLogger(__name__)

# Values per LPUSH: bounds one command's size (Redis handles a few MB per command well).
LPUSH_MAX_VALUES = 1000
# Messages the relay reads of one queue to learn which executions it holds (10,000 take some
# 30-60 ms to fetch and scan). A longer queue is not read.
BROKER_READ_MAX_MESSAGES = 50_000

# The tasks sent from here, by their permanent names in batchjobs/tasks.py.
EXECUTE_TASK = "batchjobs.execute"
EXECUTE_PARTITION_TASK = "batchjobs.execute_partition"
NOTIFICATION_SEND_TASK = "batchjobs.notification_send"


def _task(name: str) -> Task:
    """The task registered as `name`. A worker imports batchjobs/tasks.py when it starts; any
    other process (web, command line, beat) on its first send here, by running the app's
    autodiscovery (config/celery_app.py), which Celery defers until then."""
    tasks = current_app.tasks
    if name not in tasks:
        current_app.loader.import_default_modules()
    return tasks[name]


def task_send(name: str, args: Sequence[Any], **options: Any) -> None:
    """One message for the task registered as `name`; `options` are apply_async's (queue,
    priority, time_limit...). Raises if the broker is away: the caller decides what then."""
    _task(name).apply_async(args=list(args), **options)


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
    so a broker outage delays the run but never loses it, nor fails the request that made it.
    An execution whose route is refused is left to the relay too, which sets it aside."""
    try:
        refused = executions_publish(execution_ids, routes=routes)
    except Exception:
        logger.warning("broker unavailable; the relay will send these later", exc_info=True)
        return False
    for execution_id, error in refused.items():
        logger.warning("execution %s not sent (the relay sets it aside): %s", execution_id, error)
    return True


def executions_publish(
    execution_ids: Iterable[int],
    *,
    routes: Mapping[int, Route] | None = None,
    ahead_of_backlog: bool = False,
) -> dict[int, Exception]:
    """Send one message per execution. `routes` gives each one's Route when the caller has them
    already (beat, from its claim); otherwise they are read from the jobs. `ahead_of_backlog`
    puts the messages at the head of their queue, before the messages waiting there (the
    relay's: each is overdue, its first message lost or its backoff over).

    Returns the executions not sent, with the error their route raised: the messages of a
    route Celery or Redis refuses (a queue name whose key holds something else, a value that
    cannot be serialised) fail alone. A broker outage raises, whatever was sent."""
    execute = _task(EXECUTE_TASK)
    execution_ids = sorted(execution_ids)
    if routes is None:
        routes = {
            pk: Route(queue, priority, timeout_seconds)
            for pk, queue, priority, timeout_seconds in BatchLog.objects.filter(
                pk__in=execution_ids
            ).values_list("pk", "job__queue", "job__priority", "job__timeout_seconds")
        }
    refused: dict[int, Exception] = {}
    groups: dict[tuple[str, int, float], list[int]] = defaultdict(list)
    for pk in execution_ids:
        if (route := routes.get(pk)) is None:
            continue  # deleted since (its job with it): nothing to run
        # Backstop for code the soft limit cannot interrupt: the pool kills the child.
        time_limit = route.timeout_seconds + settings.BATCHJOBS_HARD_TIMEOUT_GRACE_SECONDS
        groups[(route.queue, route.priority, time_limit)].append(pk)

    with execute.app.producer_or_acquire() as producer:
        outages = producer.connection.connection_errors
        redis = producer.connection.transport.driver_type == "redis"
        with (
            _redis_pipeline(producer, outages, ahead=ahead_of_backlog)
            if redis
            else _no_pipeline()  # one apply_async each, at the tail: the relay's copies too
        ) as captured:
            for (queue, priority, time_limit), ids in groups.items():
                mark = captured.begin_route() if captured is not None else 0
                try:
                    for pk in ids:
                        if captured is not None and captured.captured_since(mark):
                            captured.send_copy(pk)
                        else:  # the route's first message (or kombu replaced the channel)
                            execute.apply_async(
                                args=[pk], queue=queue, priority=priority,
                                time_limit=time_limit, producer=producer,
                            )  # fmt: skip
                except Exception as error:
                    if _broker_outage(error, outages):
                        raise
                    logger.warning("route %s refused: %s", (queue, priority, time_limit), error)
                    if captured is not None:
                        captured.discard_since(mark)
                    refused.update(dict.fromkeys(ids, error))
        if captured is not None:
            refused.update(captured.refused)
    return refused


def _broker_outage(error: BaseException, outages: tuple[type[BaseException], ...]) -> bool:
    """Whether `error` is the broker being away rather than a message it refused. kombu
    raises both as OperationalError, from the Redis error that caused it."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, outages):
            return True
        cause = cause.__cause__
    return False


def queue_depths() -> dict[str, int]:
    """Messages waiting in each queue that jobs use (and the default queue), summed over the
    Redis lists kombu keeps per priority step."""
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


class BrokerHoldings(NamedTuple):
    """What the broker holds: the ids of the executions whose messages wait in the queues read
    or were taken by a worker lately, and the queues too long to read."""

    execution_ids: frozenset[int]
    unread_queues: frozenset[str]


# The unacked messages (kombu's QoS: a hash by delivery tag, a sorted set of delivery times)
# delivered since ARGV[1], at most ARGV[2] of them.
_RECENTLY_UNACKED_SCRIPT = """
local tags = redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[1], '+inf', 'LIMIT', 0, ARGV[2])
local messages = {}
for i, tag in ipairs(tags) do messages[i] = redis.call('HGET', KEYS[1], tag) end
return messages
"""


def broker_holdings(*, queues: Collection[str], taken_within_seconds: float) -> BrokerHoldings:
    """The executions the broker holds for `queues`: the messages waiting in every priority
    list of each queue, and those workers took within `taken_within_seconds` and have not
    acknowledged (reserved or running). Two pipelined round trips whatever the numbers: the
    lengths and the unacknowledged messages, then the queues' contents.

    An older unacknowledged message does not count: a live worker claims what it takes within
    moments, so it is most likely a dead worker's, which kombu gives back only after the
    visibility timeout (an hour by default); a copy is harmless (DESIGN.md §4.2). A queue of
    more than BROKER_READ_MAX_MESSAGES is not read, to bound the cost of a pass (its lengths
    are read first, not to fetch 50 MB for nothing): its executions wait their turn as before,
    unread. If more messages than that are unacked, the reserved ones are unknown and every
    non-empty queue is left unread."""
    if not queues:
        return BrokerHoldings(frozenset(), frozenset())
    with current_app.connection_for_read() as connection:
        channel = connection.default_channel
        if connection.transport.driver_type != "redis":  # only Redis is used (DESIGN.md §1)
            return BrokerHoldings(frozenset(), frozenset())
        keys = {
            queue: [channel._q_for_pri(queue, priority) for priority in channel.priority_steps]
            for queue in sorted(queues)
        }
        client = channel.client
        pipeline = client.pipeline(transaction=False)
        for names in keys.values():
            for name in names:
                pipeline.llen(name)
        client.register_script(_RECENTLY_UNACKED_SCRIPT)(
            keys=[channel.unacked_key, channel.unacked_index_key],
            args=[time.time() - taken_within_seconds, BROKER_READ_MAX_MESSAGES + 1],
            client=pipeline,
        )
        *counts, unacked = pipeline.execute(raise_on_error=False)
        # A key that is no list (a queue named like another key) holds no message: its runs
        # are sent, refused and set aside, instead of failing the pass for every queue.
        lengths = iter(0 if isinstance(count, Exception) else count for count in counts)
        waiting = {
            queue: [(name, next(lengths)) for name in names] for queue, names in keys.items()
        }
        unread = {
            queue
            for queue, lists in waiting.items()
            if sum(length for _, length in lists) > BROKER_READ_MAX_MESSAGES
        }
        if isinstance(unacked, Exception) or len(unacked) > BROKER_READ_MAX_MESSAGES:
            why = unacked if isinstance(unacked, Exception) else f"over {BROKER_READ_MAX_MESSAGES}"
            logger.warning("relay: which messages workers hold is unknown (%s)", why)
            unread |= {queue for queue, lists in waiting.items() if any(n for _, n in lists)}
            unacked = []
        pipeline = client.pipeline(transaction=False)
        for queue, lists in waiting.items():
            for name, length in lists:
                if length and queue not in unread:
                    pipeline.lrange(name, 0, BROKER_READ_MAX_MESSAGES)
        contents = pipeline.execute(raise_on_error=False) if len(pipeline) else []
    held = {
        execution_id
        for found in contents
        if not isinstance(found, Exception)
        for raw in found
        if (execution_id := _execution_id(raw)) is not None
    }
    held |= {pk for raw in unacked if raw and (pk := _execution_id(raw)) is not None}
    return BrokerHoldings(frozenset(held), frozenset(unread))


_EXECUTE_TASK_FIELD = f'"task": "{EXECUTE_TASK}"'.encode()
_BODY_FIELD = b'"body": "'


def _execution_id(raw: bytes) -> int | None:
    """The execution id in a message of batchjobs.execute, as kombu serialises it (alone, or
    inside an unacked entry), else None. Only the start of the body is decoded: its first 24
    bytes hold `[[<id>], ` for any id, about 0.6 µs a message against 7 to parse it all."""
    if _EXECUTE_TASK_FIELD not in raw or (start := raw.find(_BODY_FIELD)) < 0:
        return None
    start += len(_BODY_FIELD)
    try:
        head = base64.b64decode(raw[start : start + 32])
        return int(head[2 : head.index(b"]")])
    except ValueError:  # not a message of ours after all
        return None


class _Batch(NamedTuple):
    """Serialised messages of one route, for one Redis list, and the executions they carry."""

    key: str
    messages: list[str]
    execution_ids: list[int]


class _CapturedPublish:
    """The message Celery built last, kept as a JSON template, and the serialised messages to
    push, a batch per route: copies are stamped into the template's text, not re-encoded."""

    # Placeholders in the template; none needs escaping in JSON, nor can occur in a message.
    _TASK_ID = "@batchjobs:task-id@"
    _DELIVERY_TAG = "@batchjobs:delivery-tag@"
    _ARGSREPR = "@batchjobs:argsrepr@"
    _BODY = "@batchjobs:body@"

    def __init__(self, producer) -> None:
        self._producer = producer
        self._patched: list = []  # the channels whose deliveries come here
        self.batches: list[_Batch] = []
        self.refused: dict[int, Exception] = {}  # filled when the pipeline is sent
        self._template = ""
        self._body_tail = ""  # the task body after its args: `, {kwargs}, {embed}]`

    def capture(self, key: str, message: dict) -> None:
        args, _, embed = json.loads(base64.b64decode(message["body"]))
        self._body_tail = ", {}, " + json.dumps(embed) + "]"
        headers = dict(message["headers"], id=self._TASK_ID, root_id=self._TASK_ID)
        headers["argsrepr"] = self._ARGSREPR
        properties = dict(
            message["properties"], correlation_id=self._TASK_ID, delivery_tag=self._DELIVERY_TAG
        )
        template = dict(message, body=self._BODY, headers=headers, properties=properties)
        self._template = dumps(template)
        self.batches.append(_Batch(key, [dumps(message)], [args[0]]))

    def send_copy(self, execution_id: int) -> None:
        task_id = str(uuid.uuid4())
        body = f"[[{execution_id}]{self._body_tail}".encode()
        batch = self.batches[-1]
        batch.execution_ids.append(execution_id)
        batch.messages.append(
            self._template.replace(self._TASK_ID, task_id)
            .replace(self._DELIVERY_TAG, str(uuid.uuid4()))
            .replace(self._ARGSREPR, f"[{execution_id}]")
            .replace(self._BODY, base64.b64encode(body).decode())
        )

    def begin_route(self) -> int:
        """Route the deliveries of the producer's channel here (again: a route refused closes
        the channel, and kombu opens another). Returns a mark for the methods below."""
        channel = self._producer.channel
        if "_put" not in vars(channel):
            channel._put = self._put
            self._patched.append(channel)
        return len(self.batches)

    def captured_since(self, mark: int) -> bool:
        return len(self.batches) > mark

    def discard_since(self, mark: int) -> None:
        """Drop what a route that failed midway captured."""
        del self.batches[mark:]

    def release(self) -> None:
        for channel in self._patched:
            del channel._put

    def _put(self, queue: str, message: dict, **kwargs) -> None:
        # kombu's Channel._put, but into the pipeline (kombu/transport/redis.py).
        channel = self._producer.channel
        priority = channel._get_message_priority(message, reverse=False)
        self.capture(channel._q_for_pri(queue, priority), message)


@contextmanager
def _redis_pipeline(
    producer, outages: tuple[type[BaseException], ...], *, ahead: bool
) -> Iterator[_CapturedPublish]:
    """Route the channel's deliveries into one Redis pipeline, sent on exit, with one LPUSH of
    many values per list (as kombu's LPUSH of one, in the same order); if `ahead`, RPUSHes in
    reverse, so that they are the next ones popped (kombu pops from the right), in order.
    A command Redis refuses refuses the executions of its messages only."""
    captured = _CapturedPublish(producer)
    # Made now: a route refused on the way closes the producer's channel, not this client.
    client = producer.channel._create_client()
    try:
        yield captured
        pipeline = client.pipeline(transaction=False)
        push = pipeline.rpush if ahead else pipeline.lpush
        commands: list[list[int]] = []  # the executions each command carries
        for key, messages, ids in reversed(captured.batches) if ahead else captured.batches:
            if ahead:
                messages, ids = messages[::-1], ids[::-1]
            for start in range(0, len(messages), LPUSH_MAX_VALUES):
                push(key, *messages[start : start + LPUSH_MAX_VALUES])
                commands.append(ids[start : start + LPUSH_MAX_VALUES])
        for ids, result in zip(commands, pipeline.execute(raise_on_error=False), strict=True):
            if isinstance(result, Exception):
                if _broker_outage(result, outages):
                    raise result
                captured.refused.update(dict.fromkeys(ids, result))
    finally:
        captured.release()


@contextmanager
def _no_pipeline() -> Iterator[None]:
    yield None
