"""A worker's announcement of the queues it consumes (the record selectors/workers.py reads and
describes). Called by the WorkerPresence step of every Celery worker (batchjobs/tasks.py)."""

import json

from batchjobs.scheduling.heartbeat import broker_redis
from batchjobs.selectors.workers import WORKERS_KEY, WORKERS_SEEN_KEY

# Entries of workers silent this long are deleted by the next announcement of any worker:
# container and pod names change, and the record must not grow with every name ever used.
FORGET_AFTER_SECONDS = 24 * 3600

# The time is Redis's (TIME), so that an entry's age never depends on a machine's clock.
_ANNOUNCE = """
local now = redis.call('TIME')
local seconds = tonumber(now[1]) + tonumber(now[2]) / 1000000
redis.call('ZADD', KEYS[2], seconds, ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local forgotten = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', seconds - tonumber(ARGV[3]))
for _, name in ipairs(forgotten) do
  redis.call('HDEL', KEYS[1], name)
  redis.call('ZREM', KEYS[2], name)
end
return #forgotten
"""


def worker_presence_announce(
    *, worker: str, queues: list[str], pool: str, concurrency: int | None, pid: int
) -> None:
    """Say that `worker` is running and consumes `queues`, as of now."""
    record = json.dumps(
        {"queues": sorted(queues), "pool": pool, "concurrency": concurrency, "pid": pid}
    )
    with broker_redis() as client:
        client.eval(_ANNOUNCE, 2, WORKERS_KEY, WORKERS_SEEN_KEY, worker, record,
                    FORGET_AFTER_SECONDS)  # fmt: skip


def worker_presence_withdraw(*, worker: str) -> None:
    """Say that `worker` stopped: its queues stop counting at once, not after the timeout."""
    with broker_redis() as client:
        pipe = client.pipeline(transaction=True)
        pipe.zrem(WORKERS_SEEN_KEY, worker)
        pipe.hdel(WORKERS_KEY, worker)
        pipe.execute()
