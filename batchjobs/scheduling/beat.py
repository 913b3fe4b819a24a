"""The beat scheduler class: django-celery-beat's DatabaseScheduler (whose PeriodicTasks keep
running housekeeping) plus the execution loops that must not wait for a free worker: relaying
due messages and reaping attempts whose worker died."""

import logging
import time

from django.conf import settings
from django.db import close_old_connections, connections
from django_celery_beat.schedulers import DatabaseScheduler

logger = logging.getLogger(__name__)


class BatchScheduler(DatabaseScheduler):
    _next_housekeeping = 0.0

    def tick(self, *args, **kwargs) -> float:
        sleep_for = super().tick(*args, **kwargs)
        now = time.monotonic()
        if now >= self._next_housekeeping:
            self._next_housekeeping = now + settings.BATCHJOBS_HOUSEKEEPING_SECONDS
            self._housekeeping()
        return min(sleep_for, max(0.0, self._next_housekeeping - time.monotonic()))

    def _housekeeping(self) -> None:
        from batchjobs.execution.lifecycle import executions_reap_lost
        from batchjobs.services.executions import executions_relay

        close_old_connections()
        try:
            reaped = executions_reap_lost()
            relayed = executions_relay()
        except Exception:
            # The database or broker is away: log, drop the connection, try again next tick.
            logger.exception("beat housekeeping failed; retrying on the next tick")
            connections.close_all()
            return
        if reaped or relayed:
            logger.info(
                "housekeeping: reaped %d lost attempts, relayed %d messages", reaped, relayed
            )
