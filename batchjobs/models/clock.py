from datetime import UTC, datetime

from django.db import connections
from django.utils import timezone


def database_now(using: str = "default") -> datetime:
    """The database server's clock: the one time every web, worker and beat process shares.

    SQLite runs inside this process, so its clock is this machine's.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        return timezone.now()
    with connection.cursor() as cursor:
        # clock_timestamp(), not now(): now() is frozen at the start of the transaction.
        cursor.execute("SELECT clock_timestamp()")
        (now,) = cursor.fetchone()
    return now.astimezone(UTC)
