"""Which beats and workers are alive, as the broker tells."""

import json
from dataclasses import dataclass
from datetime import datetime

from django.core.cache import cache

from batchjobs.scheduling.heartbeat import BEAT_HEARTBEAT_PREFIX, broker_redis

# How long a status read waits for workers to answer a ping, and for how long the answer
# stands: a dashboard polled by many people should not broadcast a ping per page view.
WORKERS_PING_SECONDS = 0.5
WORKERS_SEEN_CACHE_SECONDS = 5


@dataclass(frozen=True)
class BeatHeartbeat:
    beat_id: str
    last_seen: datetime


def beat_heartbeats() -> list[BeatHeartbeat]:
    """The beats whose heartbeat has not expired, most recently seen first."""
    with broker_redis() as client:
        keys = list(client.scan_iter(match=f"{BEAT_HEARTBEAT_PREFIX}*", count=100))
        values = client.mget(keys) if keys else []
    beats = []
    for value in values:
        if value is None:  # expired between the scan and the read
            continue
        try:
            record = json.loads(value)
            beats.append(
                BeatHeartbeat(
                    beat_id=str(record["beat_id"]),
                    last_seen=datetime.fromisoformat(record["at"]),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue  # not ours to interpret
    return sorted(beats, key=lambda beat: beat.last_seen, reverse=True)


def workers_seen(*, timeout: float = WORKERS_PING_SECONDS) -> list[str]:
    """The Celery workers that answered a ping within `timeout` seconds (an answer up to
    WORKERS_SEEN_CACHE_SECONDS old may be returned)."""
    from celery import current_app

    def ping() -> list[str]:
        return sorted(current_app.control.inspect(timeout=timeout).ping() or {})

    return cache.get_or_set("batchjobs:workers-seen", ping, WORKERS_SEEN_CACHE_SECONDS) or []


@dataclass(frozen=True)
class Liveness:
    """Which beats and workers are alive, as the broker tells."""

    # False when the broker could not be asked: then beats and workers are unknown, not absent.
    broker_reachable: bool
    beats: list[BeatHeartbeat]
    workers: list[str] | None  # None when not asked (or the broker could not be)

    @property
    def beat_alive(self) -> bool:
        return bool(self.beats)


def liveness(*, ask_workers: bool = True) -> Liveness:
    """Beats whose heartbeat is fresh and, if asked, workers that answer a ping."""
    from kombu.exceptions import OperationalError
    from redis import RedisError

    try:
        beats = beat_heartbeats()
        workers = workers_seen() if ask_workers else None
    except (OperationalError, RedisError, OSError):
        return Liveness(broker_reachable=False, beats=[], workers=None)
    return Liveness(broker_reachable=True, beats=beats, workers=workers)
