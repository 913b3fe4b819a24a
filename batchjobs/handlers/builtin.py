"""Handlers that ship with batchjobs."""

import os
import time

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .registry import HandlerContext, NonRetryableError, handler

SQL_RESULT_ROW_LIMIT = 100


# Each description is the docstring's first sentence, marked for translation: the console
# lists the handlers with it.
@handler(
    "noop",
    schema={"type": "object", "additionalProperties": False},
    description=_("Do nothing and succeed; useful to test a schedule or measure the platform."),
)
def noop(ctx: HandlerContext) -> dict:
    """Do nothing and succeed; useful to test a schedule or measure the platform."""
    return {"ok": True}


@handler(
    "sleep",
    schema={
        "type": "object",
        "properties": {"seconds": {"type": "number", "minimum": 0, "maximum": 86400}},
        "required": ["seconds"],
        "additionalProperties": False,
    },
    description=_("Sleep for the given number of seconds, reporting progress every second."),
)
def sleep(ctx: HandlerContext, *, seconds: float) -> dict:
    """Sleep for the given number of seconds, reporting progress every second."""
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        ctx.progress(int(elapsed), int(seconds))
        time.sleep(min(1.0, seconds - elapsed))
    return {"slept_seconds": seconds}


@handler(
    "fail",
    schema={
        "type": "object",
        "properties": {
            "message": {"type": "string", "maxLength": 1000},
            "retryable": {"type": "boolean"},
            "succeed_on_attempt": {"type": "integer", "minimum": 1},
        },
        "additionalProperties": False,
    },
    description=_("Fail on purpose (to show retries); optionally succeed from a given attempt on."),
)
def fail(
    ctx: HandlerContext,
    *,
    message: str = "failed on purpose",
    retryable: bool = True,
    succeed_on_attempt: int | None = None,
) -> dict:
    """Fail on purpose (to show retries); optionally succeed from a given attempt on."""
    if succeed_on_attempt is not None and ctx.attempt >= succeed_on_attempt:
        return {"succeeded_on_attempt": ctx.attempt}
    if retryable:
        raise RuntimeError(message)
    raise NonRetryableError(message)


@handler(
    "sql",
    schema={
        "type": "object",
        "properties": {
            "database": {"type": "string", "minLength": 1},
            "statement": {"type": "string", "minLength": 1, "maxLength": 100000},
            "params": {"type": "array"},
        },
        "required": ["database", "statement"],
        "additionalProperties": False,
    },
    description=_(
        "Run one SQL statement in a transaction against a database alias of "
        "BATCHJOBS_SQL_DATABASES (never batchjobs' own database)."
    ),
)
def sql(ctx: HandlerContext, *, statement: str, database: str, params=()) -> dict:
    """Run one SQL statement in a transaction against a database alias of
    BATCHJOBS_SQL_DATABASES (never batchjobs' own database).

    Returns the affected row count and, for a query, its first rows.
    """
    sql_database_check(database)
    with transaction.atomic(using=database), connections[database].cursor() as cursor:
        cursor.execute(statement, list(params) if params else None)
        result: dict = {"rowcount": cursor.rowcount}
        if cursor.description:
            columns = [column[0] for column in cursor.description]
            rows = cursor.fetchmany(SQL_RESULT_ROW_LIMIT)
            result["columns"] = columns
            result["rows"] = [list(row) for row in rows]
    return result


def sql_database_check(alias: str) -> None:
    """Raise NonRetryableError unless SQL jobs may run statements on `alias`: it is listed in
    BATCHJOBS_SQL_DATABASES, configured, and not batchjobs' own database under any alias (its
    users, audit trail and executions are not for SQL jobs to read or write)."""
    allowed = settings.BATCHJOBS_SQL_DATABASES
    if alias not in allowed or alias not in connections:
        raise NonRetryableError(
            gettext("database %(alias)s is not allowed; allowed: %(allowed)s")
            % {"alias": repr(alias), "allowed": allowed}
        )
    if database_is_batchjobs_own(alias):
        raise NonRetryableError(
            gettext(
                "database %(alias)s is batchjobs' own database; "
                "SQL jobs may not run statements on it"
            )
            % {"alias": repr(alias)}
        )


_LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}
_DEFAULT_PORTS = {"postgresql": "5432", "mysql": "3306"}


def database_is_batchjobs_own(alias: str) -> bool:
    """Whether the configured `alias` connects to batchjobs' own database, however its host,
    port or path is spelled."""
    return _database_identity(alias) == _database_identity(DEFAULT_DB_ALIAS)


def _database_identity(alias: str) -> tuple[str, str, str, str]:
    """(vendor, host, port, name) of the database an alias connects to, spelled one way: a
    local host or a socket directory is "local", a blank port the vendor's default."""
    connection = connections[alias]
    config = connection.settings_dict
    vendor = connection.vendor
    host = str(config.get("HOST") or "").lower()
    host = "local" if host in _LOCAL_HOSTS or host.startswith("/") else host
    port = str(config.get("PORT") or _DEFAULT_PORTS.get(vendor, ""))
    name = str(config.get("NAME") or "")
    if vendor == "sqlite" and name and not name.startswith(("file:", ":memory:")):
        name = os.path.realpath(name)
    return (vendor, host, port, name)
