"""Worker presence for tests: a worker's announcement written as a worker writes it, and this
test process's Celery app pointed at a broker that is away, how the admin, the API and the
dashboard are shown to answer "unknown" rather than fail."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from batchjobs.services.workers import worker_presence_announce, worker_presence_withdraw
from tests.support.processes import free_port


@contextmanager
def worker_announced(
    queues: list[str], *, pool: str = "prefork", concurrency: int = 2
) -> Iterator[str]:
    """A worker (named uniquely, the name yielded) present for the block, consuming `queues`."""
    name = f"test-{uuid.uuid4().hex[:8]}@host"
    worker_presence_announce(worker=name, queues=queues, pool=pool, concurrency=concurrency, pid=1)
    try:
        yield name
    finally:
        worker_presence_withdraw(worker=name)


BROKER_URL_SETTINGS = ("broker_url", "broker_read_url", "broker_write_url")


@contextmanager
def broker_at(url: str) -> Iterator[None]:
    """Point this process's Celery app at `url` (its pools are rebuilt on next use). The read
    and write URLs too: Celery resolved them from broker_url at start, and connects for
    writing (publishing, the presence and heartbeat keys) through the write one."""
    from config.celery_app import app

    previous = {name: app.conf[name] for name in BROKER_URL_SETTINGS}

    def reset() -> None:
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.update(dict.fromkeys(previous, url))
    reset()
    try:
        yield
    finally:
        app.conf.update(previous)
        reset()


@contextmanager
def broker_unreachable() -> Iterator[None]:
    """A broker URL on a port nothing listens on: every connection is refused."""
    with broker_at(f"redis://127.0.0.1:{free_port()}/0"):
        yield
