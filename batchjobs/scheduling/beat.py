"""The beat scheduler class: `celery beat -S batchjobs.scheduling.beat:BatchScheduler`.

It is django-celery-beat's DatabaseScheduler (whose PeriodicTasks keep running housekeeping)
with our loop on top: fire due schedules in batches, relay due retries and reap dead attempts,
then sleep until the earliest next fire, waking early when a schedule changes.
"""

import logging
import time
from datetime import datetime

from django.conf import settings
from django.db import close_old_connections, connections
from django_celery_beat.schedulers import DatabaseScheduler

logger = logging.getLogger(__name__)

# Longest uninterrupted wait: bounds how late a change is seen if a notification is lost, and
# keeps beat responsive to shutdown.
MAX_WAIT_SECONDS = 5.0
# Keep firing batches for at most this long before giving housekeeping a turn.
FIRING_SLICE_SECONDS = 1.0


class BatchScheduler(DatabaseScheduler):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from batchjobs.scheduling.wakeup import ScheduleChangeListener

        database = connections["default"]
        self._listener = ScheduleChangeListener(
            database.settings_dict if database.vendor == "postgresql" else None
        )
        self._next_periodic = 0.0
        self._next_housekeeping = 0.0
        self._next_heartbeat = 0.0

    def tick(self, *args, **kwargs) -> float:
        # Firing first: beat wakes when a fire is due, and the bookkeeping below can wait the
        # few milliseconds it takes.
        close_old_connections()
        more_due = self._guarded(self._fire_due, "firing")
        now = time.monotonic()
        if now >= self._next_heartbeat:  # "beat alive" on the dashboard and /metrics
            from batchjobs.scheduling.heartbeat import (
                BEAT_HEARTBEAT_EVERY_SECONDS,
                beat_heartbeat_record,
            )

            self._next_heartbeat = now + BEAT_HEARTBEAT_EVERY_SECONDS
            try:
                beat_heartbeat_record()
            except Exception as exc:  # the broker is away; firing says so itself
                logger.warning("beat heartbeat not recorded: %s", exc)
        if now >= self._next_periodic:
            periodic_wait = super().tick(*args, **kwargs)
            self._next_periodic = now + min(periodic_wait, MAX_WAIT_SECONDS)
        if time.monotonic() >= self._next_housekeeping:
            # Apart from firing: recovery of dead attempts must not wait on a failing fire.
            self._guarded(self._housekeeping, "housekeeping")
            self._next_housekeeping = time.monotonic() + settings.BATCHJOBS_HOUSEKEEPING_SECONDS
        if not more_due:
            self._guarded(lambda: self._listener.wait(self._seconds_to_wait()), "waiting")
        # Celery's loop sleeps for what tick returns; we already waited, so return a token.
        return 0.001

    def all_as_schedule(self) -> dict:
        """django-celery-beat's, with each periodic task on its own: one whose schedule cannot
        be built (an interval stored past what a timedelta holds, say) is skipped with its
        error in the log, instead of ending beat and every schedule with it."""
        from batchjobs.models.set_aside import DATABASE_OUTAGES, set_aside_reason

        entries = {}
        for model in self.enabled_models():
            try:
                entries[model.name] = self.Entry(model, app=self.app)
            except DATABASE_OUTAGES:
                raise
            except Exception as error:
                logger.error(
                    "periodic task %r skipped: its schedule raised %s; fix and save it",
                    model.name,
                    set_aside_reason(error),
                )
        return entries

    def _guarded(self, step, name: str):
        try:
            return step()
        except Exception:
            # The database or broker is away: drop connections, retry shortly. (A row's own
            # error never gets here: firing and each housekeeping pass set that row aside and
            # go on, DESIGN.md §4 invariant 11; sleeping on it would stop every schedule.)
            logger.exception("beat %s failed; retrying", name)
            connections.close_all()
            time.sleep(1.0)
            return False

    def _fire_due(self) -> bool:
        """Fire batches for up to FIRING_SLICE_SECONDS; True if schedules are still due."""
        from batchjobs.execution.publish import executions_publish_or_defer
        from batchjobs.scheduling.firing import schedules_fire_due

        give_up = time.monotonic() + FIRING_SLICE_SECONDS
        while time.monotonic() < give_up:
            fired = schedules_fire_due()
            if not fired.schedules:
                return False
            if fired.execution_ids:
                # Committed already: with the broker away, the relay sends them later.
                executions_publish_or_defer(fired.execution_ids, routes=fired.routes)
        return True

    def _housekeeping(self) -> None:
        from batchjobs.execution.lifecycle import executions_reap_lost
        from batchjobs.execution.relay import executions_relay

        reaped = executions_reap_lost()
        relayed = executions_relay()
        if reaped or relayed:
            logger.info("housekeeping: reaped %d lost attempts, relayed %d", reaped, relayed)

    def _seconds_to_wait(self) -> float:
        from batchjobs.models.clock import database_now
        from batchjobs.scheduling.firing import schedules_next_due

        limit = min(
            MAX_WAIT_SECONDS,
            max(0.0, self._next_periodic - time.monotonic()),
            max(0.0, self._next_housekeeping - time.monotonic()),
        )
        next_due: datetime | None = schedules_next_due()
        if next_due is None:
            return limit
        return max(0.0, min(limit, (next_due - database_now()).total_seconds()))

    def close(self) -> None:
        self._listener.close()
        super().close()
