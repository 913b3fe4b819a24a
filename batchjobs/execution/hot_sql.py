"""The statements of the hot paths, written as SQL for speed (beat's fire INSERT, a worker's
claim and finish: DESIGN.md §7), built from the models' _meta and the status enums rather
than spelled by hand: a renamed column or status is followed, and a column the fire INSERT
cannot fill stops the import of this module (and tests/execution/test_hot_sql.py), instead
of failing beat's first fire at run time."""

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import psycopg
from django.db import connection, models
from django.db.models import NOT_PROVIDED

from batchjobs.models import (
    AttemptStatus,
    BatchAttempt,
    BatchJob,
    BatchLog,
    ExecutionStatus,
    Trigger,
)
from batchjobs.models.execution import RUNNING_STATUSES


class Table:
    """A model's table as SQL names: str() is the table, an attribute the column of the field
    of that name (`Table(BatchLog).job` is "job_id")."""

    def __init__(self, model: type[models.Model]) -> None:
        self._model_meta = model._meta

    def __str__(self) -> str:
        return self._model_meta.db_table

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        return column_of(self._model_meta.get_field(name))


def column_of(field: object) -> str:
    """The column of a concrete field (a relation's reverse side, or a field without a
    column, has none to write)."""
    if not isinstance(field, models.Field) or not field.column:
        raise TypeError(f"{field!r} has no column")
    return field.column


def sql_literal(value: Any, field: models.Field | None = None) -> str:
    """A constant of our own (a default, a status: never user input) as an SQL literal, for a
    statement sent with parameters (a % is doubled)."""
    if value is None:
        return "NULL"
    if isinstance(field, models.JSONField) or isinstance(value, dict | list):
        value = json.dumps(value)
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''").replace("%", "%%") + "'"


def _literals(choices: type[models.TextChoices]) -> Any:
    return SimpleNamespace(**{member.name: sql_literal(member.value) for member in choices})


LOG, ATTEMPT, JOB = Table(BatchLog), Table(BatchAttempt), Table(BatchJob)
STATUS = _literals(ExecutionStatus)  # STATUS.QUEUED is "'QUEUED'"
ATTEMPT_STATUS = _literals(AttemptStatus)
RUNNING_SQL = ", ".join(sql_literal(status.value) for status in RUNNING_STATUSES)


@contextmanager
def server_bound_cursor() -> Iterator[psycopg.Cursor]:
    """A cursor on Django's (PostgreSQL) connection, so inside its transaction, that sends
    parameters separately from the statement, as PostgreSQL's protocol allows: an unnest of
    one array per column stays a short statement whatever the number of rows (Django's
    client-side binding spends longer splicing 6,000 values than the INSERT). Errors come out
    as Django's, as from any other cursor."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


class UnfilledColumns(Exception):
    """An INSERT written by hand would leave NOT NULL columns without a value."""


def insert_constants(
    fields: Iterable[models.Field], *, filled: Iterable[str], constants: Mapping[str, Any] = {}
) -> dict[str, str]:
    """column -> SQL literal for every concrete field an INSERT does not take from its rows
    (`filled`, field names): `constants` first, else the field's default (as the ORM would
    save it), else NULL if the column allows it, else '' for text. A column with a database
    default is left to the database. UnfilledColumns names those left without a value."""
    filled = set(filled)
    values: dict[str, str] = {}
    unfilled = []
    for field in fields:
        if field.primary_key or field.name in filled:
            continue
        if field.name in constants:
            value = constants[field.name]
        elif field.has_default():
            value = field.get_default()
        elif field.null:
            value = None
        elif field.db_default is not NOT_PROVIDED:
            continue
        elif field.empty_strings_allowed:
            value = ""
        else:
            unfilled.append(column_of(field))
            continue
        values[column_of(field)] = sql_literal(value, field)
    if unfilled:
        raise UnfilledColumns(
            f"no value for the NOT NULL column(s) {', '.join(unfilled)}: give the field a "
            "default (or db_default), or fill it in the rows"
        )
    return values


# --- beat: one execution row per fire (scheduling/firing.py) ---------------------------------

# The fields of the rows firing builds, in the order of their tuples; then what every fired
# execution starts with that the model's defaults do not say.
FIRE_ROW_FIELDS = (
    "job", "schedule", "scheduled_for", "params", "status", "exclusive", "max_attempts",
    "next_attempt_at", "published_at", "finished_at", "error", "note", "created_at",
    "logical_time", "data_interval_start", "data_interval_end",
)  # fmt: skip
FIRE_ROW_COLUMNS = tuple(getattr(LOG, name) for name in FIRE_ROW_FIELDS)
FIRE_CONSTANTS = insert_constants(
    BatchLog._meta.concrete_fields,
    filled=FIRE_ROW_FIELDS,
    constants={"trigger": Trigger.SCHEDULE.value},
)
# What beat reads back of each execution it made: its route (by job), and the fire it is (so
# the fire's occurrence record names it, and a fire missing from the answer was a duplicate).
FIRE_RETURNING = (
    f"ON CONFLICT DO NOTHING RETURNING {LOG.id}, {LOG.status}, {LOG.job}, {LOG.schedule}, "
    f"{LOG.scheduled_for}"
)


def fire_row_types(connection) -> tuple[str, ...]:
    """The database types of FIRE_ROW_FIELDS, for the arrays PostgreSQL's INSERT unnests;
    without a length (varchar, not varchar(16)): the column checks it once, on assignment."""
    types = tuple(BatchLog._meta.get_field(name).db_type(connection) for name in FIRE_ROW_FIELDS)
    return tuple(str(kind).split("(")[0] for kind in types)  # each is a column: never None


# --- a worker: claim an execution, record an attempt's end (execution/lifecycle.py) ----------

# What a claim reads back of the execution (attnames: they build a BatchLog).
CLAIMED_FIELDS = ("id", "job_id", "attempts", "max_attempts", "exclusive", "params",
                  "execution_context", "heartbeat_at", "backfill_id")  # fmt: skip
_CLAIMED_COLUMNS = ", ".join(getattr(LOG, name) for name in CLAIMED_FIELDS)

# {now}: the database's clock; {worker}, {execution}: parameters, as the vendor writes them;
# {also}: more conditions (a claim under limits). A new attempt starts its progress afresh: the
# count an earlier attempt reported is not this one's.
CLAIM_UPDATE = f"""
    UPDATE {LOG} SET {LOG.status} = {STATUS.STARTED}, {LOG.attempts} = {LOG.attempts} + 1,
        {LOG.started_at} = COALESCE({LOG.started_at}, {{now}}), {LOG.heartbeat_at} = {{now}},
        {LOG.worker} = {{worker}}, {LOG.held_by} = '', {LOG.held_reason} = '',
        {LOG.progress_done} = NULL, {LOG.progress_total} = NULL
    WHERE {LOG.id} = {{execution}} AND {LOG.status} = {STATUS.QUEUED}
        AND {LOG.next_attempt_at} <= {{now}} AND {LOG.attempts} < {LOG.max_attempts}{{also}}
    RETURNING {_CLAIMED_COLUMNS}
"""
# The attempt a claim opens, RUNNING: its rows are (execution, number, worker, task_id,
# started_at); ATTEMPT_VALUES puts the status and the constants around them.
_ATTEMPT_FIELDS = ("execution", "number", "status", "worker", "task_id", "started_at")
_ATTEMPT_CONSTANTS = insert_constants(BatchAttempt._meta.concrete_fields, filled=_ATTEMPT_FIELDS)
ATTEMPT_INSERT = (
    f"INSERT INTO {ATTEMPT} ({', '.join(getattr(ATTEMPT, name) for name in _ATTEMPT_FIELDS)}, "
    f"{', '.join(_ATTEMPT_CONSTANTS)})"
)


def attempt_values(execution: str, number: str, worker: str, task_id: str, started_at: str) -> str:
    """The values of ATTEMPT_INSERT's row, from SQL expressions for the ones that vary."""
    constants = ", ".join(_ATTEMPT_CONSTANTS.values())
    running = ATTEMPT_STATUS.RUNNING
    return f"{execution}, {number}, {running}, {worker}, {task_id}, {started_at}, {constants}"


# PostgreSQL: the claim and its attempt in one statement, with the job's updated_at.
CLAIM_POSTGRESQL = f"""
    WITH claimed AS ({
    CLAIM_UPDATE.format(now="STATEMENT_TIMESTAMP()", worker="%s", execution="%s", also="")
}),
    attempt AS ({ATTEMPT_INSERT}
        SELECT {attempt_values(LOG.id, LOG.attempts, "%s", "%s", LOG.heartbeat_at)} FROM claimed)
    SELECT {_CLAIMED_COLUMNS},
        (SELECT {JOB.updated_at} FROM {JOB} WHERE {JOB.id} = claimed.{LOG.job})
    FROM claimed
"""

# PostgreSQL, a claim under limits on runs at once, in one statement: batchjobs_limit_gate
# (migration 0011) locks the limits %(keys)s and counts their runs; with room, and %(claim)s,
# the execution is claimed as above; without, it is held (held_by the full limit, its reason
# written by format() from %(reason_format)s and the limit's label in %(labels)s, sent again
# by the relay after
# %(recheck)s seconds unless a run's end wakes it first). The locks last until the statement
# commits, and nothing runs between the count and the claim or hold. The first column is the
# verdict (the full limit's key, its runs and its maximum, tab-separated; NULL with room),
# then the claim's columns.
CLAIM_GATED_POSTGRESQL = f"""
    WITH gate AS MATERIALIZED (SELECT batchjobs_limit_gate(%(keys)s::text[]) AS verdict),
    claimed AS ({
    CLAIM_UPDATE.format(
        now="STATEMENT_TIMESTAMP()",
        worker="%(worker)s",
        execution="%(id)s",
        also=" AND %(claim)s AND (SELECT verdict FROM gate) IS NULL",
    )
}),
    attempt AS ({ATTEMPT_INSERT}
        SELECT {
    attempt_values(LOG.id, LOG.attempts, "%(worker)s", "%(task_id)s", LOG.heartbeat_at)
} FROM claimed),
    held AS (
        UPDATE {LOG} SET {LOG.held_by} = split_part(gate.verdict, chr(9), 1),
            {LOG.held_reason} = left(format(%(reason_format)s,
                (%(labels)s::text[])[array_position(
                    %(keys)s::text[], split_part(gate.verdict, chr(9), 1))],
                split_part(gate.verdict, chr(9), 2), split_part(gate.verdict, chr(9), 3)), 500),
            {LOG.next_attempt_at} = STATEMENT_TIMESTAMP() + make_interval(secs => %(recheck)s)
        FROM gate
        WHERE gate.verdict IS NOT NULL AND {LOG.id} = %(id)s AND {LOG.status} = {STATUS.QUEUED}
        RETURNING {LOG.id}
    )
    SELECT gate.verdict, {
    ", ".join(f"claimed.{column}" for column in _CLAIMED_COLUMNS.split(", "))
},
        (SELECT {JOB.updated_at} FROM {JOB} WHERE {JOB.id} = claimed.{LOG.job}),
        (SELECT count(*) FROM held)
    FROM gate LEFT JOIN claimed ON TRUE
"""

# %(planned)s: the status the attempt's outcome asks for. {now}, {retry_at}: SQL for the
# database's clock and the retry's time; {json}: the cast a JSON parameter needs.
FINISH_EXECUTION = f"""
    UPDATE {LOG} SET
        {LOG.status} = CASE
            WHEN {LOG.status} = {STATUS.STOPPING} AND %(planned)s <> {STATUS.COMPLETED}
            THEN {STATUS.STOPPED} ELSE %(planned)s END,
        {LOG.finished_at} = CASE
            WHEN {LOG.status} = {STATUS.STOPPING} OR %(planned)s <> {STATUS.QUEUED}
            THEN {{now}} ELSE NULL END,
        {LOG.next_attempt_at} = CASE
            WHEN {LOG.status} <> {STATUS.STOPPING} AND %(planned)s = {STATUS.QUEUED}
            THEN {{retry_at}} ELSE {LOG.next_attempt_at} END,
        {LOG.result} = CASE
            WHEN %(planned)s = {STATUS.COMPLETED} THEN %(result)s{{json}} ELSE {LOG.result} END,
        {LOG.error} = %(error)s, {LOG.heartbeat_at} = NULL
    WHERE {LOG.id} = %(id)s AND {LOG.status} IN ({RUNNING_SQL}) AND {LOG.attempts} = %(number)s
    RETURNING {LOG.status}
"""
FINISH_ATTEMPT = f"""
    UPDATE {ATTEMPT} SET {ATTEMPT.status} = %(attempt_status)s, {ATTEMPT.finished_at} = {{now}},
        {ATTEMPT.http_status} = %(http_status)s, {ATTEMPT.response_excerpt} = %(excerpt)s,
        {ATTEMPT.error} = %(error)s, {ATTEMPT.retryable} = %(retryable)s
    WHERE {ATTEMPT.execution} = %(id)s AND {ATTEMPT.number} = %(number)s
        AND {ATTEMPT.status} = {ATTEMPT_STATUS.RUNNING}
"""

# The heartbeat of every attempt a worker process runs, in one statement: {beating} is a
# relation (id, attempt) of the attempts, {now} the database's clock. Returns each execution
# still owned, with its status (STOPPING asks the attempt to end).
HEARTBEAT_MANY = f"""
    UPDATE {LOG} SET {LOG.heartbeat_at} = {{now}}
    WHERE {LOG.status} IN ({RUNNING_SQL})
        AND ({LOG.id}, {LOG.attempts}) IN (SELECT id, attempt FROM {{beating}})
    RETURNING {LOG.id}, {LOG.status}
"""
