"""Setting a row aside (DESIGN.md §4, invariant 11): a schedule or execution whose processing
raised is marked with when and why, left out of later passes, and shown to operators, so that
one bad row never stops the others.

What counts as the row's own error: anything its processing raises, except the database being
away (down, restarting, the connection lost) or a schema newer than the code, which fail the
whole pass: that pass is retried later and sets nothing aside.
"""

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

from django.apps import apps
from django.db import DataError, IntegrityError, InterfaceError, OperationalError, transaction

logger = logging.getLogger(__name__)

DATABASE_OUTAGES = (OperationalError, InterfaceError)
# Data the database refuses (a value out of range, a violated constraint): it fails a whole
# multi-row statement, whose rows are then written in smaller groups to find the one refused.
# SQLite's driver refuses an integer past 64 bits itself, with OverflowError, before sending.
REFUSED_BY_DATABASE = (DataError, IntegrityError, OverflowError)
SET_ASIDE_REASON_CHARS = 500


# SQLite names the column in its message only.
_SQLITE_NOT_NULL = re.compile(r"NOT NULL constraint failed: (?P<table>\w+)\.(?P<column>\w+)")


def refused_by_newer_schema(error: BaseException) -> bool:
    """The database refused a row for lacking a column this code does not know: a migration
    ran ahead of the running release (an upgrade under a beat or worker not yet replaced).
    Not the row's fault: the pass fails and is retried, and the row is processed once the new
    release runs, where setting it aside would stop it until someone saved it."""
    if not isinstance(error, IntegrityError):
        return False
    diag = getattr(error.__cause__, "diag", None)  # psycopg's, on PostgreSQL
    if diag is not None and getattr(error.__cause__, "sqlstate", None) == "23502":
        table, column = diag.table_name, diag.column_name
    elif found := _SQLITE_NOT_NULL.match(str(error)):
        table, column = found["table"], found["column"]
    else:
        return False
    known = {
        field.column
        for model in apps.get_models()
        if model._meta.db_table == table
        for field in model._meta.concrete_fields
    }
    return bool(known) and column not in known


def set_aside_reason(error: BaseException) -> str:
    """The error, short: "OverflowError: date value out of range" (a database error's first
    line; its DETAIL and HINT lines follow it in the log)."""
    lines = str(error).strip().splitlines()
    reason = f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return reason.replace("\x00", "")[:SET_ASIDE_REASON_CHARS]  # PostgreSQL text refuses NUL


@contextmanager
def row_isolated(what: str, reasons: list[str]) -> Iterator[None]:
    """Process one row of a pass in a savepoint: if it raises, its writes are undone, the error
    is logged with its traceback and appended to `reasons` ("<what>: <reason>"), and the pass
    goes on. The database being away is not the row's error: it still stops the pass."""
    try:
        with transaction.atomic():
            yield
    except DATABASE_OUTAGES:
        raise
    except Exception as error:
        if refused_by_newer_schema(error):
            raise
        logger.error("%s raised; set aside, the others go on", what, exc_info=error)
        reasons.append(f"{what}: {set_aside_reason(error)}")
