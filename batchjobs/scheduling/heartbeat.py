"""Beat's heartbeat: a key on the broker's Redis that each beat process refreshes, so that the
dashboard, the API and /metrics can tell beat is alive (batchjobs.selectors.liveness reads it).
The key's format is defined here, once, for both sides."""

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from django.utils import timezone

# Beat refreshes its key at least this often and the key lives this long: a beat that has not
# ticked for BEAT_HEARTBEAT_TTL_SECONDS is gone (its tick blocks for at most a few seconds).
BEAT_HEARTBEAT_PREFIX = "batchjobs:beat:"
BEAT_HEARTBEAT_EVERY_SECONDS = 1.0
BEAT_HEARTBEAT_TTL_SECONDS = 30


@contextmanager
def broker_redis() -> Iterator:
    """A redis-py client on the broker (REDIS_URL, or the embedded server's socket)."""
    from celery import current_app

    with current_app.connection_for_write() as connection:
        yield connection.default_channel.client


def beat_heartbeat_record(
    *, beat_id: str | None = None, ttl_seconds: float = BEAT_HEARTBEAT_TTL_SECONDS
) -> None:
    """Beat's side: say "alive" for `ttl_seconds`. Called by the scheduler at least every
    BEAT_HEARTBEAT_EVERY_SECONDS; each beat process has its own key, so HA pairs show both."""
    beat_id = beat_id or f"{socket.gethostname()}:{os.getpid()}"
    value = json.dumps({"beat_id": beat_id, "at": timezone.now().isoformat()})
    with broker_redis() as client:
        client.set(f"{BEAT_HEARTBEAT_PREFIX}{beat_id}", value, px=int(ttl_seconds * 1000))
