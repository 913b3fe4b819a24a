"""Turning due schedules into executions: DESIGN.md §2 step 2, one transaction per batch.

Any number of beats may run this at once: each batch locks its schedules with
FOR UPDATE SKIP LOCKED, so two beats never work on the same schedule, and the unique fire key
(schedule, scheduled_for) makes a duplicate execution impossible even if they did.
"""

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg
from django.db import connection, transaction
from django.utils.translation import gettext

from batchjobs.execution.hot_sql import (
    FIRE_CONSTANTS,
    FIRE_RETURNING,
    FIRE_ROW_COLUMNS,
    fire_row_types,
)
from batchjobs.execution.publish import Route
from batchjobs.models import BatchLog, BatchSchedule, ExecutionStatus, MisfirePolicy
from batchjobs.models.clock import database_now
from batchjobs.models.job import OverlapPolicy
from batchjobs.models.set_aside import (
    REFUSED_BY_DATABASE,
    refused_by_newer_schema,
    set_aside_reason,
)
from batchjobs.rules.misfire import misfire_skip_note

from .fire_times import Timing, fires_between, jitter_offset, schedule_next_fire

logger = logging.getLogger(__name__)

# How many missed fires are looked at per schedule: bounds the work after a long downtime of a
# schedule that fires every second.
MISSED_FIRES_SCAN_LIMIT = 10_000
# Schedules claimed per transaction: 1,000 fired 20% faster than 500 and no faster than 2,000
# (bench/scheduler.py), and keeps each transaction's locks short.
FIRE_BATCH_SIZE = 1000


@dataclass
class FirePlan:
    """What one due schedule does in this batch."""

    run: list[datetime] = field(default_factory=list)  # nominal times that get an execution
    skipped: datetime | None = None  # one SKIPPED record standing for fires a policy declined
    note: str = ""


def _due_fires(
    timing: Timing, first: datetime, now: datetime, horizon: timedelta
) -> tuple[list[datetime], int, datetime]:
    """The nominal fires from `first` to `now`, how many older ones were left out, and the
    instant the schedule moves past. When a frequent schedule missed more fires than are worth
    listing, only those within `horizon` of now are listed: no policy looks further back."""
    just_before = timedelta(microseconds=1)
    fires = fires_between(timing, first - just_before, now, limit=MISSED_FIRES_SCAN_LIMIT)
    if len(fires) < MISSED_FIRES_SCAN_LIMIT:
        return fires, 0, fires[-1] if fires else now
    recent_from = max(fires[-1], now - horizon)
    recent = fires_between(timing, recent_from, now, limit=MISSED_FIRES_SCAN_LIMIT)
    moved_past = recent[-1] if recent and len(recent) < MISSED_FIRES_SCAN_LIMIT else now
    return recent, len(fires), moved_past


def plan_fires(schedule: "DueSchedule", *, now: datetime) -> tuple[FirePlan, datetime]:
    """Which fires of a due schedule run, and the instant the schedule moves past."""
    timing = Timing.of(schedule)
    if schedule.next_fire_at is None:  # the claim takes only schedules with a fire due
        raise ValueError(f"schedule {schedule.pk} has no next fire to plan")
    first = schedule.next_fire_at - jitter_offset(schedule.pk, schedule.jitter_seconds)
    grace = timedelta(seconds=schedule.misfire_grace_seconds)
    horizon = grace
    if schedule.misfire_policy == MisfirePolicy.CATCH_UP:
        horizon = max(grace, timedelta(seconds=schedule.catch_up_window_seconds))
    due, older, moved_past = _due_fires(timing, first, now, horizon)
    if not due:  # `first` itself is no longer a fire (the timing changed under it)
        return FirePlan(), moved_past
    on_time = [fire for fire in due if now - fire <= grace]
    late = [fire for fire in due if now - fire > grace]

    plan = FirePlan()
    if not late and not older:
        plan.run = on_time
        return plan, moved_past
    missed = len(late) + older
    # Notes beat writes are in the deployment's language (LANGUAGE_CODE); each starts with the
    # policy as its value reads ("misfire skip:" is matched: rules/misfire.py).
    missed_text = gettext("%(count)s missed fire(s) since %(since)s UTC") % {
        "count": missed,
        "since": f"{first:%Y-%m-%d %H:%M:%S}",
    }
    if schedule.misfire_policy == MisfirePolicy.FIRE_ONCE:
        plan.run = on_time or late[-1:]
        plan.note = gettext("misfire fire_once: %(missed)s coalesced into this run") % {
            "missed": missed_text
        }
    elif schedule.misfire_policy == MisfirePolicy.SKIP:
        plan.run = on_time
        plan.skipped = late[-1] if late else None
        plan.note = misfire_skip_note(missed_text)
    else:  # catch_up
        window_start = now - timedelta(seconds=schedule.catch_up_window_seconds)
        in_window = [fire for fire in late if fire >= window_start]
        caught_up = in_window[-schedule.catch_up_max :] if schedule.catch_up_max else []
        dropped = missed - len(caught_up)
        plan.run = caught_up + on_time
        plan.note = gettext("misfire catch_up: %(run)s of %(missed)s run") % {
            "run": len(caught_up),
            "missed": missed_text,
        }
        if dropped:
            plan.note += gettext("; %(dropped)s outside the window or over the cap dropped") % {
                "dropped": dropped
            }
    return plan, moved_past


@dataclass(frozen=True)
class FiredBatch:
    schedules: int  # due schedules handled; 0 when none is due (or other beats hold them all)
    routes: dict[int, Route]  # the QUEUED executions created, to publish once committed, each
    # with where its message goes (known from the claim, so publishing reads nothing back)

    @property
    def execution_ids(self) -> list[int]:
        return list(self.routes)


@dataclass(slots=True)
class DueSchedule:
    """A claimed schedule with its job's firing settings: plain values, not model instances,
    which cost 6x more to build for 500 rows. Named like the model's fields, so the schedule
    math (Timing.of, plan_fires, schedule_next_fire) takes either."""

    pk: int
    kind: str
    timezone: str
    run_at: datetime | None
    interval_every: int | None
    interval_unit: str
    cron_expression: str
    start_at: datetime | None
    end_at: datetime | None
    dst_gap_policy: str
    dst_fold_policy: str
    max_runs: int | None
    run_count: int
    misfire_policy: str
    misfire_grace_seconds: int
    catch_up_window_seconds: int
    catch_up_max: int
    jitter_seconds: int
    params: dict
    next_fire_at: datetime | None  # set when claimed (due); None once _plan finds it finished
    last_fire_at: datetime | None
    job_id: int
    job_enabled: bool
    job_params: dict
    job_overlap_policy: str
    job_max_attempts: int
    job_route: Route


# The claim's columns, in DueSchedule's order: the schedule's fields (job_id last), then the
# job's, then the job's route.
_SCHEDULE_FIELDS = tuple(
    name for name in DueSchedule.__dataclass_fields__ if not name.startswith("job_")
) + ("job_id",)
_JOB_FIELDS = ("enabled", "params", "overlap_policy", "max_attempts")
_ROUTE_FIELDS = ("queue", "priority", "timeout_seconds")


def _claim_due(*, now: datetime, batch_size: int) -> list[DueSchedule]:
    rows = (
        BatchSchedule.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(paused=False, next_fire_at__lte=now, set_aside_at__isnull=True)
        .order_by("next_fire_at")
        .values_list(
            *_SCHEDULE_FIELDS,
            *(f"job__{name}" for name in _JOB_FIELDS),
            *(f"job__{name}" for name in _ROUTE_FIELDS),
        )[:batch_size]
    )
    route_at = len(_SCHEDULE_FIELDS) + len(_JOB_FIELDS)
    # mypy lets the unsized *row fill every field, leaving none for the route; the columns are
    # DueSchedule's fields before job_route, in order, by construction of _SCHEDULE_FIELDS.
    return [
        DueSchedule(*row[:route_at], Route(*row[route_at:]))  # type: ignore[call-arg]
        for row in rows
    ]


def schedules_fire_due(
    *, batch_size: int = FIRE_BATCH_SIZE, now: datetime | None = None
) -> FiredBatch:
    """Fire one batch of due schedules in one transaction. A schedule whose fires cannot be
    worked out, or whose rows the database refuses, is set aside (DESIGN.md §4, invariant 11):
    the others fire in the same call."""
    try:
        return _fire_batch(batch_size=batch_size, now=now, find_refused_rows=False)
    except REFUSED_BY_DATABASE as error:
        if refused_by_newer_schema(error):
            raise  # every row would be: beat retries until the new release replaces it
        # One row failed a whole statement and rolled the batch back: fire it again, writing
        # in halves inside savepoints to find that row (not done first: it costs round trips).
        return _fire_batch(batch_size=batch_size, now=now, find_refused_rows=True)


# A schedule that is fired, and the execution rows it adds.
_Planned = tuple[DueSchedule, list[tuple]]


def _fire_batch(*, batch_size: int, now: datetime | None, find_refused_rows: bool) -> FiredBatch:
    with transaction.atomic():
        now = now or database_now()
        schedules = _claim_due(now=now, batch_size=batch_size)
        if not schedules:
            return FiredBatch(schedules=0, routes={})
        planned: list[_Planned] = []
        set_aside: dict[int, Exception] = {}
        job_params: dict[int, str] = {}  # one job's parameters, serialised once per batch
        for schedule in schedules:
            try:
                planned.append((schedule, _plan(schedule, job_params=job_params, now=now)))
            except Exception as error:  # the schedule's data: no database call in planning
                set_aside[schedule.pk] = error
        if find_refused_rows:
            refused: dict[int, Exception] = {}
            created = _write_finding_refused(planned, refused=refused)
            if len(refused) > 1 and len(refused) == len(planned):
                # Not one row taken: the database refuses every row (a constraint or trigger
                # of its own), which is no schedule's fault. Beat retries rather than set a
                # whole batch aside.
                raise next(iter(refused.values()))
            set_aside |= refused
        else:
            created = _write(planned)
        _set_aside(set_aside, now=now)
    job_routes = {schedule.job_id: schedule.job_route for schedule in schedules}
    return FiredBatch(
        schedules=len(schedules),
        routes={
            pk: job_routes[job_id]
            for pk, status, job_id in created
            if status == ExecutionStatus.QUEUED
        },
    )


def _plan(schedule: DueSchedule, *, job_params: dict[int, str], now: datetime) -> list[tuple]:
    """The execution rows of one claimed schedule; moves the schedule on (in memory)."""
    plan, moved_past = plan_fires(schedule, now=now)
    if not schedule.job_enabled:
        plan = FirePlan()  # a disabled job's schedules move on without firing
    if schedule.max_runs is not None:
        plan.run = plan.run[: max(0, schedule.max_runs - schedule.run_count)]
    if schedule.params:
        params = json.dumps({**schedule.job_params, **schedule.params})
    elif schedule.job_id in job_params:
        params = job_params[schedule.job_id]
    else:
        params = job_params[schedule.job_id] = json.dumps(schedule.job_params)
    rows = _execution_rows(schedule, plan, params=params, now=now)
    schedule.run_count += len(plan.run)
    if plan.run:
        schedule.last_fire_at = plan.run[-1]
    schedule.next_fire_at = schedule_next_fire(schedule=schedule, after=moved_past)
    return rows


def _write(planned: list[_Planned]) -> list[tuple[int, str, int]]:
    created = _insert_ignoring_duplicates([row for _, rows in planned for row in rows])
    _advance([schedule for schedule, _ in planned])
    return created


def _write_finding_refused(
    planned: list[_Planned], *, refused: dict[int, Exception]
) -> list[tuple[int, str, int]]:
    """Write each half in a savepoint, halving again a half the database refuses, down to the
    schedules whose rows it refuses, gathered in `refused`: about 2 log2(n) statements per
    row refused, and the rest of the batch fires."""
    if not planned:
        return []
    try:
        with transaction.atomic():
            return _write(planned)
    except REFUSED_BY_DATABASE as error:
        if len(planned) == 1:
            refused[planned[0][0].pk] = error
            return []
    middle = len(planned) // 2
    first = _write_finding_refused(planned[:middle], refused=refused)
    return first + _write_finding_refused(planned[middle:], refused=refused)


def _set_aside(errors: dict[int, Exception], *, now: datetime) -> None:
    """Mark the schedules in `errors` set aside: the claim and beat's sleep pass them by until
    someone saves them (services.schedules.schedule_save clears the mark)."""
    for pk, error in errors.items():  # rare: one statement each is fine
        logger.error("schedule %s set aside: firing it raised", pk, exc_info=error)
        BatchSchedule.objects.filter(pk=pk).update(
            set_aside_at=now, set_aside_reason=set_aside_reason(error)
        )


def _execution_rows(
    schedule: DueSchedule, plan: FirePlan, *, params: str, now: datetime
) -> list[tuple]:
    """The rows of the executions the plan makes, with FIRE_ROW_FIELDS in order."""
    exclusive = schedule.job_overlap_policy != OverlapPolicy.ALLOW
    job_id, schedule_id, max_attempts = schedule.job_id, schedule.pk, schedule.job_max_attempts
    rows: list[tuple] = []
    for index, fire in enumerate(plan.run):
        note = plan.note if index == 0 else ""
        rows.append((job_id, schedule_id, fire, params, ExecutionStatus.QUEUED.value, exclusive,
                     max_attempts, now, now, None, "", note, now))  # fmt: skip
    if plan.skipped is not None:
        rows.append((job_id, schedule_id, plan.skipped, params, ExecutionStatus.SKIPPED.value,
                     exclusive, max_attempts, None, None, now, plan.note, "", now))  # fmt: skip
    return rows


def _insert_ignoring_duplicates(rows: list[tuple]) -> list[tuple[int, str, int]]:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id, status, job_id: the unique fire key
    turns a duplicate fire into nothing instead of an error that would roll back the batch.
    Rows hold FIRE_ROW_FIELDS; every other column gets its FIRE_CONSTANTS value."""
    if not rows:
        return []
    table = BatchLog._meta.db_table
    columns = ", ".join((*FIRE_ROW_COLUMNS, *FIRE_CONSTANTS))
    constants = ", ".join(FIRE_CONSTANTS.values())
    if connection.vendor == "postgresql":
        # One array per column: a short statement whatever the batch size, bound server-side
        # (Django's client-side binding spends longer splicing 6,000 values than the INSERT).
        types = fire_row_types(connection)
        arrays = ", ".join(f"%b::{kind.replace('jsonb', 'text')}[]" for kind in types)
        values = ", ".join(
            f"v.{name}::jsonb" if kind == "jsonb" else f"v.{name}"
            for name, kind in zip(FIRE_ROW_COLUMNS, types, strict=True)
        )
        sql = (
            f"INSERT INTO {table} ({columns}) SELECT {values}, {constants} "
            f"FROM unnest({arrays}) AS v({', '.join(FIRE_ROW_COLUMNS)}) {FIRE_RETURNING}"
        )
        with _server_bound_cursor() as cursor:
            cursor.execute(sql, [list(column) for column in zip(*rows, strict=True)])
            return cursor.fetchall()
    adapt = connection.ops.adapt_datetimefield_value
    one = "(" + ", ".join("%s" for _ in FIRE_ROW_COLUMNS) + f", {constants})"
    sql = f"INSERT INTO {table} ({columns}) VALUES {', '.join([one] * len(rows))} {FIRE_RETURNING}"
    params = [
        adapt(value) if isinstance(value, datetime) else value for row in rows for value in row
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _advance(schedules: list[DueSchedule]) -> None:
    """Write each schedule's new next_fire_at, run_count and last_fire_at in one statement.
    (Django's bulk_update builds a CASE per row and field: 20x slower at 500 rows.)"""
    table = BatchSchedule._meta.db_table
    if connection.vendor == "postgresql":
        with _server_bound_cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS s SET next_fire_at = v.next_fire_at, "
                "run_count = v.run_count, last_fire_at = v.last_fire_at "
                "FROM unnest(%b::bigint[], %b::timestamptz[], %b::integer[], %b::timestamptz[]) "
                "AS v(id, next_fire_at, run_count, last_fire_at) WHERE s.id = v.id",
                [[s.pk for s in schedules], [s.next_fire_at for s in schedules],
                 [s.run_count for s in schedules], [s.last_fire_at for s in schedules]],
            )  # fmt: skip
        return
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET next_fire_at = %s, run_count = %s, last_fire_at = %s "
            "WHERE id = %s",
            [(adapt(s.next_fire_at), s.run_count, adapt(s.last_fire_at), s.pk)
             for s in schedules],
        )  # fmt: skip


@contextmanager
def _server_bound_cursor() -> Iterator[psycopg.Cursor]:
    """A cursor on Django's connection (so inside its transaction) that sends parameters
    separately from the statement, as PostgreSQL's protocol allows; errors come out as
    Django's, as from any other cursor."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


def schedules_next_due() -> datetime | None:
    """The earliest next_fire_at of a live schedule (the due index, in order)."""
    return (
        BatchSchedule.objects.filter(
            paused=False, next_fire_at__isnull=False, set_aside_at__isnull=True
        )
        .order_by("next_fire_at")
        .values_list("next_fire_at", flat=True)
        .first()
    )
