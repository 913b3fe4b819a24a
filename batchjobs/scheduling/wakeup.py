"""Waking beat early when a schedule changes, so that an edit takes effect within a second.

PostgreSQL: NOTIFY on commit of any schedule change, LISTEN in beat. Elsewhere (SQLite, the
quick start): beat polls the earliest next_fire_at at least every POLL_SECONDS.
"""

import select
import time
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction

if TYPE_CHECKING:  # for the annotations; _connect imports it where it connects, as before
    import psycopg

CHANNEL = "batchjobs_schedules"
POLL_SECONDS = 0.5


def schedules_changed_notify() -> None:
    """Tell every beat to recompute its wait, once the current transaction commits."""
    if connection.vendor != "postgresql":
        return

    def notify() -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {CHANNEL}")

    transaction.on_commit(notify)


class ScheduleChangeListener:
    """Beat's side: a dedicated autocommit connection LISTENing on CHANNEL."""

    def __init__(self, database_settings: dict[str, Any] | None) -> None:
        self._settings = database_settings
        self._connection: psycopg.Connection[Any] | None = None

    @staticmethod
    def _connect(options: dict[str, Any]) -> "psycopg.Connection[Any]":
        import psycopg

        conn = psycopg.connect(
            dbname=options["NAME"],
            user=options.get("USER") or None,
            password=options.get("PASSWORD") or None,
            host=options.get("HOST") or None,
            port=options.get("PORT") or None,
            autocommit=True,
        )
        conn.execute(f"LISTEN {CHANNEL}")
        return conn

    def wait(self, seconds: float) -> bool:
        """Block up to `seconds`; True if a change was announced (the wait was cut short)."""
        settings = self._settings
        if settings is None:  # no LISTEN/NOTIFY: a short poll instead
            time.sleep(min(seconds, POLL_SECONDS))
            return False
        try:
            listening = self._connection
            if listening is None or listening.closed:
                listening = self._connection = self._connect(settings)
            ready, _, _ = select.select([listening.fileno()], [], [], max(0.0, seconds))
            if not ready:
                return False
            return any(True for _ in listening.notifies(timeout=0, stop_after=1000))
        except Exception:
            # The database went away: drop the connection; the caller's loop retries.
            self.close()
            time.sleep(min(seconds, POLL_SECONDS))
            return False

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None
