"""Turning due schedules into executions: DESIGN.md §2 step 2, one transaction per batch.

Any number of beats may run this at once: each batch locks its schedules with
FOR UPDATE SKIP LOCKED, so two beats never work on the same schedule, and the unique fire key
(schedule, scheduled_for) makes a duplicate execution impossible even if they did.
"""

import json
import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext

from batchjobs.execution.hot_sql import (
    FIRE_CONSTANTS,
    FIRE_RETURNING,
    FIRE_ROW_COLUMNS,
    fire_row_types,
    server_bound_cursor,
)
from batchjobs.execution.publish import Route
from batchjobs.models import (
    BatchLog,
    BatchSchedule,
    ExecutionStatus,
    MisfirePolicy,
    OccurrenceOutcome,
)
from batchjobs.models.clock import database_now
from batchjobs.models.job import OverlapPolicy
from batchjobs.models.set_aside import (
    REFUSED_BY_DATABASE,
    refused_by_newer_schema,
    set_aside_reason,
)

from .calendars import ScheduleCalendars, schedules_calendars
from .fire_times import (
    Timing,
    fires_between,
    jitter_offset,
    previous_fire_before,
    schedule_next_fire,
)
from .occurrences import (
    OCCURRENCE_ROWS_PER_EVENT,
    FireRun,
    Occurrence,
    fires_counted,
    occurrence_of_run,
    occurrences_fired_sql,
    occurrences_of_fires,
    occurrences_record,
)

logger = logging.getLogger(__name__)

# How many fires are listed per schedule and pass: bounds the work after a long downtime of a
# schedule that fires every second. The fires beyond are counted, not listed (the account of
# occurrences holds every one).
MISSED_FIRES_SCAN_LIMIT = 10_000
# Schedules claimed per transaction: 1,000 fired 20% faster than 500 and no faster than 2,000
# (bench/scheduler.py), and keeps each transaction's locks short.
FIRE_BATCH_SIZE = 1000


@dataclass
class Fate:
    """Fires of a plan that get no execution of their own, with one outcome: listed, or a run
    counted and not listed. A COALESCED fate's reason is written once its execution is known."""

    outcome: OccurrenceOutcome
    reason: str
    fires: list[datetime] | FireRun


@dataclass
class FirePlan:
    """What one due schedule does in this batch: every nominal fire enumerated is either run
    or in a fate."""

    run: list[datetime] = field(default_factory=list)  # nominal times that get an execution
    previous: list[datetime | None] = field(default_factory=list)  # each run fire's previous
    # nominal fire (its data interval's start); None when the schedule has none before it
    fates: list[Fate] = field(default_factory=list)  # the other fires, oldest first
    note: str = ""  # on the first run's execution
    last_nominal: datetime | None = None  # the latest fire enumerated: the next one's previous
    # run fires a calendar moved: fire -> (the instant its execution runs, why)
    moved: dict[datetime, tuple[datetime, str]] = field(default_factory=dict)


def _due_fires(
    timing: Timing, first: datetime, now: datetime, horizon: timedelta
) -> tuple[list[datetime], FireRun | None, FireRun | None, datetime]:
    """The nominal fires from `first` to `now`: those listed, the runs before and after them
    that are only counted, and the instant the schedule moves past. When a frequent schedule
    missed more fires than are worth listing, only those within `horizon` of now are listed
    (no policy looks further back), and at most MISSED_FIRES_SCAN_LIMIT of those."""
    just_before = timedelta(microseconds=1)
    fires = fires_between(timing, first - just_before, now, limit=MISSED_FIRES_SCAN_LIMIT)
    if len(fires) < MISSED_FIRES_SCAN_LIMIT:
        return fires, None, None, fires[-1] if fires else now
    recent_from = max(fires[-1], now - horizon)
    gap = fires_counted(timing, fires[-1], recent_from)
    older = FireRun(
        first=fires[0],
        last=gap.last if gap else fires[-1],
        count=len(fires) + (gap.count if gap else 0),
    )
    recent = fires_between(timing, recent_from, now, limit=MISSED_FIRES_SCAN_LIMIT)
    if len(recent) < MISSED_FIRES_SCAN_LIMIT:
        return recent, older, None, recent[-1] if recent else now
    return recent, older, fires_counted(timing, recent[-1], now), now


# A schedule with no previous_fire_at (new, or its timing changed) looks its previous fire up
# once; schedules of one timing due at one instant share the answer.
_previous_fire = lru_cache(maxsize=4096)(previous_fire_before)


def plan_fires(schedule: "DueSchedule", *, now: datetime) -> tuple[FirePlan, datetime]:
    """Which fires of a due schedule run, what becomes of the others, and the instant the
    schedule moves past."""
    timing = Timing.of(schedule)
    if schedule.next_fire_at is None:  # the claim takes only schedules with a fire due
        raise ValueError(f"schedule {schedule.pk} has no next fire to plan")
    first = schedule.next_fire_at - jitter_offset(schedule.pk, schedule.jitter_seconds)
    grace = timedelta(seconds=schedule.misfire_grace_seconds)
    horizon = grace
    if schedule.misfire_policy == MisfirePolicy.CATCH_UP:
        horizon = max(grace, timedelta(seconds=schedule.catch_up_window_seconds))
    due, older, newer, moved_past = _due_fires(timing, first, now, horizon)
    plan = FirePlan()
    if not due and older is None:  # `first` itself is no longer a fire (the timing changed)
        return plan, moved_past
    if newer is not None:
        plan.last_nominal = newer.last
    elif due:
        plan.last_nominal = due[-1]
    elif older is not None:
        plan.last_nominal = older.last
    on_time = [fire for fire in due if now - fire <= grace]
    late = due[: len(due) - len(on_time)]  # the fires are in order: the late ones first
    counted = [run for run in (older, newer) if run is not None]
    missed = len(late) + sum(run.count for run in counted)
    if not missed:
        plan.run = on_time
    else:
        _plan_misfire(schedule, plan, on_time=on_time, late=late, first=first, now=now,
                      older=older, newer=newer, missed=missed)  # fmt: skip
    before = _previous_of(schedule, timing, due, older)
    plan.previous = [before.get(fire) for fire in plan.run]
    return plan, moved_past


def _previous_of(
    schedule: "DueSchedule", timing: Timing, due: list[datetime], older: FireRun | None
) -> dict[datetime, datetime | None]:
    """Each listed fire's previous nominal fire: the one before it in the list, else the last
    counted before the list, else the schedule's previous_fire_at, else looked up."""
    if not due:
        return {}
    head: datetime | None
    if older is not None:
        head = older.last
    elif schedule.previous_fire_at is not None and schedule.previous_fire_at < due[0]:
        head = schedule.previous_fire_at
    else:
        head = _previous_fire(timing, due[0])
    return dict(zip(due, [head, *due[:-1]], strict=True))


def _plan_misfire(
    schedule: "DueSchedule",
    plan: FirePlan,
    *,
    on_time: list[datetime],
    late: list[datetime],
    first: datetime,
    now: datetime,
    older: FireRun | None,
    newer: FireRun | None,
    missed: int,
) -> None:
    """The misfire policy's plan for a schedule with fires more than its grace late."""
    # Notes and reasons beat writes are in the deployment's language (LANGUAGE_CODE).
    missed_text = gettext("%(count)s missed fire(s) since %(since)s UTC") % {
        "count": missed,
        "since": f"{first:%Y-%m-%d %H:%M:%S}",
    }
    late_by = gettext("more than %(grace)s s late") % {"grace": schedule.misfire_grace_seconds}
    if schedule.misfire_policy == MisfirePolicy.FIRE_ONCE:
        plan.run = on_time or late[-1:]
        outcome, listed = OccurrenceOutcome.COALESCED, late if on_time else late[:-1]
        reasons = {"listed": "", "older": "", "newer": ""}
        plan.note = gettext("misfire fire_once: %(missed)s coalesced into this run") % {
            "missed": missed_text
        }
    elif schedule.misfire_policy == MisfirePolicy.SKIP:
        plan.run = on_time
        outcome, listed = OccurrenceOutcome.MISSED_SKIPPED, late
        reason = gettext("misfire skip: %(late)s, not run") % {"late": late_by}
        reasons = {"listed": reason, "older": reason, "newer": reason}
        plan.note = gettext("misfire skip: %(missed)s not run") % {"missed": missed_text}
    else:  # catch_up: the latest catch_up_max fires inside the window run
        window_start = now - timedelta(seconds=schedule.catch_up_window_seconds)
        outside = [fire for fire in late if fire < window_start]
        in_window = late[len(outside) :]
        caught_up = in_window[-schedule.catch_up_max :] if schedule.catch_up_max else []
        over_cap = in_window[: len(in_window) - len(caught_up)]
        plan.run = caught_up + on_time
        outcome, listed = OccurrenceOutcome.DROPPED, over_cap
        outside_reason = gettext(
            "misfire catch_up: %(late)s, before the catch-up window of %(window)s s"
        ) % {"late": late_by, "window": schedule.catch_up_window_seconds}
        beyond = gettext("misfire catch_up: beyond the %(limit)s fires looked at in one pass") % {
            "limit": MISSED_FIRES_SCAN_LIMIT
        }
        reasons = {
            "listed": gettext("misfire catch_up: over the cap of %(max)s runs")
            % {"max": schedule.catch_up_max},
            "older": outside_reason if older and older.last < window_start else beyond,
            "newer": beyond,
        }
        if outside:
            plan.fates.append(Fate(outcome, outside_reason, outside))
        dropped = missed - len(caught_up)
        plan.note = gettext("misfire catch_up: %(run)s of %(missed)s run") % {
            "run": len(caught_up),
            "missed": missed_text,
        }
        if dropped:
            plan.note += gettext("; %(dropped)s outside the window or over the cap dropped") % {
                "dropped": dropped
            }
    if older is not None:
        plan.fates.insert(0, Fate(outcome, reasons["older"], older))
    if listed:
        plan.fates.append(Fate(outcome, reasons["listed"], listed))
    if newer is not None:
        plan.fates.append(Fate(outcome, reasons["newer"], newer))


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
    previous_fire_at: datetime | None
    calendar_policy: str
    has_calendars: bool  # annotated by the claim: only these schedules' calendars are read
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
    links: Any = BatchSchedule.calendars.through  # django-stubs cannot type an auto M2M table
    rows = (
        BatchSchedule.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(paused=False, next_fire_at__lte=now, set_aside_at__isnull=True)
        .annotate(has_calendars=Exists(links.objects.filter(batchschedule_id=OuterRef("pk"))))
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


# A schedule that is fired, its plan, and the execution rows it adds.
_Planned = tuple[DueSchedule, FirePlan, list[tuple]]
# An execution beat made: id, status, job, schedule, scheduled_for (FIRE_RETURNING).
_Created = tuple[int, str, int, int, datetime]


def _fire_batch(*, batch_size: int, now: datetime | None, find_refused_rows: bool) -> FiredBatch:
    with transaction.atomic():
        now = now or database_now()
        schedules = _claim_due(now=now, batch_size=batch_size)
        if not schedules:
            return FiredBatch(schedules=0, routes={})
        planned: list[_Planned] = []
        set_aside: dict[int, Exception] = {}
        job_params: dict[int, str] = {}  # one job's parameters, serialised once per batch
        calendars = schedules_calendars(
            (schedule.pk, schedule.timezone, schedule.calendar_policy)
            for schedule in schedules
            if schedule.has_calendars
        )
        for schedule in schedules:
            try:
                planned.append(
                    (schedule, *_plan(schedule, job_params=job_params, now=now,
                                      calendars=calendars.get(schedule.pk)))
                )  # fmt: skip
            except Exception as error:  # the schedule's data: no database call in planning
                set_aside[schedule.pk] = error
        if find_refused_rows:
            refused: dict[int, Exception] = {}
            created = _write_finding_refused(planned, refused=refused, now=now)
            if len(refused) > 1 and len(refused) == len(planned):
                # Not one row taken: the database refuses every row (a constraint or trigger
                # of its own), which is no schedule's fault. Beat retries rather than set a
                # whole batch aside.
                raise next(iter(refused.values()))
            set_aside |= refused
        else:
            created = _write(planned, now=now)
        _set_aside(set_aside, now=now)
    job_routes = {schedule.job_id: schedule.job_route for schedule in schedules}
    # A moved fire's execution waits for its day: the relay publishes it when it comes due.
    waiting = {(schedule.pk, fire) for schedule, plan, _ in planned for fire in plan.moved}
    return FiredBatch(
        schedules=len(schedules),
        routes={
            pk: job_routes[job_id]
            for pk, status, job_id, schedule_id, fire in created
            if status == ExecutionStatus.QUEUED
            and not (waiting and (schedule_id, _aware(fire)) in waiting)
        },
    )


def _plan(
    schedule: DueSchedule,
    *,
    job_params: dict[int, str],
    now: datetime,
    calendars: ScheduleCalendars | None,
) -> tuple[FirePlan, list[tuple]]:
    """The plan and execution rows of one claimed schedule; moves the schedule on (in memory)."""
    plan, moved_past = plan_fires(schedule, now=now)
    if calendars is not None:
        _apply_calendars(plan, calendars)
    if not schedule.job_enabled:  # a disabled job's schedules move on without firing
        reason = gettext("the job was disabled")
        plan.fates = [Fate(OccurrenceOutcome.JOB_DISABLED, reason, fate.fires)
                      for fate in plan.fates]  # fmt: skip
        if plan.run:
            plan.fates.append(Fate(OccurrenceOutcome.JOB_DISABLED, reason, plan.run))
        plan.run, plan.previous, plan.note = [], [], ""
    if schedule.max_runs is not None:
        room = max(0, schedule.max_runs - schedule.run_count)
        if len(plan.run) > room:
            reason = gettext("the schedule reached its max runs (%(max)s)") % {
                "max": schedule.max_runs
            }
            if not room:  # nothing runs: the fires coalesced into a run did not run either
                plan.fates = [
                    Fate(OccurrenceOutcome.OVER_MAX_RUNS, reason, fate.fires)
                    if fate.outcome == OccurrenceOutcome.COALESCED
                    else fate
                    for fate in plan.fates
                ]
            plan.fates.append(Fate(OccurrenceOutcome.OVER_MAX_RUNS, reason, plan.run[room:]))
            plan.run, plan.previous = plan.run[:room], plan.previous[:room]
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
    if plan.last_nominal is not None:
        schedule.previous_fire_at = plan.last_nominal
    schedule.next_fire_at = schedule_next_fire(schedule=schedule, after=moved_past)
    return plan, rows


def _apply_calendars(plan: FirePlan, calendars: ScheduleCalendars) -> None:
    """The run fires the schedule's calendars exclude (policy skip) leave the run, as EXCLUDED
    fates; those they move (policy move) stay, their execution waiting for the allowed day."""
    run: list[datetime] = []
    previous: list[datetime | None] = []
    for fire, before in zip(plan.run, plan.previous, strict=True):
        verdict = calendars.verdict(fire)
        if not verdict.allowed and verdict.moved_to is None:
            plan.fates.append(Fate(OccurrenceOutcome.EXCLUDED, verdict.reason, [fire]))
            continue
        if not verdict.allowed and verdict.moved_to is not None:
            plan.moved[fire] = (verdict.moved_to, verdict.reason)
        run.append(fire)
        previous.append(before)
    plan.run, plan.previous = run, previous


def _write(planned: list[_Planned], *, now: datetime) -> list[_Created]:
    """The executions, the account of every fire planned, and the schedules moved on. On
    PostgreSQL the INSERT of the executions records their fires FIRED in the same statement
    (the bulk of the account, with nothing to send back and forth); a moved fire's record is
    then made MOVED."""
    rows = [row for _, _, rows in planned for row in rows]
    recorded = connection.vendor == "postgresql"
    created = _insert_ignoring_duplicates(rows, now=now)
    records, moved = _occurrences(planned, created, fired_recorded=recorded)
    occurrences_record(records, now=now)
    occurrences_record(moved, now=now, overwrite=True)
    _advance([schedule for schedule, _, _ in planned])
    return created


def _occurrences(
    planned: list[_Planned], created: list[_Created], *, fired_recorded: bool
) -> tuple[list[Occurrence], list[Occurrence]]:
    """One record per fire planned (bounded per schedule: occurrences_of_fires): FIRED with the
    execution made (unless `fired_recorded`: the INSERT wrote them), DEDUPLICATED where the fire
    key found one already there, and the fates; and apart, the MOVED records, which replace
    the FIRED ones the INSERT wrote."""
    made: dict[tuple[int, datetime], int] = {
        (schedule_id, _aware(fire)): pk for pk, _, _, schedule_id, fire in created
    }
    existing = _existing_executions(planned, made)
    occurrences: list[Occurrence] = []
    moved: list[Occurrence] = []
    for schedule, plan, _ in planned:
        first_run = None
        for fire in plan.run:
            pk = made.get((schedule.pk, fire))
            if pk is not None and fire in plan.moved:
                due_at, reason = plan.moved[fire]
                moved.append(Occurrence(schedule.pk, fire, OccurrenceOutcome.MOVED, reason,
                                        execution_id=pk, due_at=due_at))  # fmt: skip
            elif pk is not None:
                if not fired_recorded:
                    occurrences.append(Occurrence(schedule.pk, fire, OccurrenceOutcome.FIRED,
                                                  execution_id=pk))  # fmt: skip
            else:
                pk = existing.get((schedule.pk, fire))
                occurrences.append(Occurrence(
                    schedule.pk, fire, OccurrenceOutcome.DEDUPLICATED, execution_id=pk,
                    reason=gettext("its execution already existed (the fire key)"),
                ))  # fmt: skip
            first_run = first_run or (fire, pk)
        budget = max(0, OCCURRENCE_ROWS_PER_EVENT - len(plan.run))
        for fate in reversed(plan.fates):  # the latest fires get rows of their own
            reason, execution_id = fate.reason, None
            if fate.outcome == OccurrenceOutcome.COALESCED and first_run is not None:
                reason, execution_id = _coalesced_reason(*first_run), first_run[1]
            if isinstance(fate.fires, FireRun):
                item = occurrence_of_run(schedule.pk, fate.fires, fate.outcome, reason)
                occurrences.append(replace(item, execution_id=execution_id))
                continue
            for item in occurrences_of_fires(
                schedule.pk, fate.fires, fate.outcome, reason, rows=budget
            ):
                occurrences.append(replace(item, execution_id=execution_id))
            budget = max(0, budget - len(fate.fires))
    return occurrences, moved


def _coalesced_reason(fire: datetime, execution_id: int | None) -> str:
    if execution_id is None:
        return gettext("misfire fire_once: coalesced into the run of %(when)s UTC") % {
            "when": f"{fire:%Y-%m-%d %H:%M:%S}"
        }
    return gettext("misfire fire_once: coalesced into execution #%(id)s") % {"id": execution_id}


def _existing_executions(
    planned: list[_Planned], made: dict[tuple[int, datetime], int]
) -> dict[tuple[int, datetime], int]:
    """The executions already there for planned fires the INSERT made nothing of (another
    beat's, a backfill's): one query, and only when there are such fires."""
    missing = [(schedule.pk, fire) for schedule, plan, _ in planned for fire in plan.run
               if (schedule.pk, fire) not in made]  # fmt: skip
    if not missing:
        return {}
    found = BatchLog.objects.filter(
        schedule_id__in={pk for pk, _ in missing},
        scheduled_for__in={fire for _, fire in missing},
    ).values_list("schedule_id", "scheduled_for", "pk")
    return {(schedule_id, fire): pk for schedule_id, fire, pk in found if fire is not None}


def _aware(value: datetime | str) -> datetime:
    """A scheduled_for as RETURNING gives it: aware on PostgreSQL, text on SQLite (UTC)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = parse_datetime(value)
    if parsed is None:
        raise ValueError(f"not a date and time: {value!r}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _write_finding_refused(
    planned: list[_Planned], *, refused: dict[int, Exception], now: datetime
) -> list[_Created]:
    """Write each half in a savepoint, halving again a half the database refuses, down to the
    schedules whose rows it refuses, gathered in `refused`: about 2 log2(n) statements per
    row refused, and the rest of the batch fires."""
    if not planned:
        return []
    try:
        with transaction.atomic():
            return _write(planned, now=now)
    except REFUSED_BY_DATABASE as error:
        if len(planned) == 1:
            refused[planned[0][0].pk] = error
            return []
    middle = len(planned) // 2
    first = _write_finding_refused(planned[:middle], refused=refused, now=now)
    return first + _write_finding_refused(planned[middle:], refused=refused, now=now)


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
    """The rows of the executions the plan makes, with FIRE_ROW_FIELDS in order: each with
    its logical time (the nominal fire) and data interval (the previous nominal fire to it)."""
    exclusive = schedule.job_overlap_policy != OverlapPolicy.ALLOW
    job_id, schedule_id, max_attempts = schedule.job_id, schedule.pk, schedule.job_max_attempts
    queued = ExecutionStatus.QUEUED.value
    rows: list[tuple] = []
    for index, (fire, previous) in enumerate(zip(plan.run, plan.previous, strict=True)):
        note = plan.note if index == 0 else ""
        # A moved fire keeps its key and logical time, and waits (unpublished) for its day.
        due_at, published_at = (plan.moved[fire][0], None) if fire in plan.moved else (now, now)
        rows.append((job_id, schedule_id, fire, params, queued, exclusive, max_attempts, due_at,
                     published_at, None, "", note, now, fire, previous, fire))  # fmt: skip
    return rows


def _insert_ignoring_duplicates(rows: list[tuple], *, now: datetime) -> list[_Created]:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING (FIRE_RETURNING): the unique fire key
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
        # The executions made, and their fires' FIRED records from what the INSERT returns.
        sql = (
            f"WITH made AS (INSERT INTO {table} ({columns}) SELECT {values}, {constants} "
            f"FROM unnest({arrays}) AS v({', '.join(FIRE_ROW_COLUMNS)}) {FIRE_RETURNING}), "
            f"recorded AS ({occurrences_fired_sql('made')}) SELECT * FROM made"
        )
        with server_bound_cursor() as cursor:
            cursor.execute(sql, [*(list(column) for column in zip(*rows, strict=True)), now])
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
    """Write each schedule's new next_fire_at, run_count, last_fire_at and previous_fire_at in
    one statement. (Django's bulk_update builds a CASE per row and field: 20x slower at 500
    rows.)"""
    table = BatchSchedule._meta.db_table
    if connection.vendor == "postgresql":
        with server_bound_cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS s SET next_fire_at = v.next_fire_at, "
                "run_count = v.run_count, last_fire_at = v.last_fire_at, "
                "previous_fire_at = v.previous_fire_at "
                "FROM unnest(%b::bigint[], %b::timestamptz[], %b::integer[], %b::timestamptz[], "
                "%b::timestamptz[]) "
                "AS v(id, next_fire_at, run_count, last_fire_at, previous_fire_at) "
                "WHERE s.id = v.id",
                [[s.pk for s in schedules], [s.next_fire_at for s in schedules],
                 [s.run_count for s in schedules], [s.last_fire_at for s in schedules],
                 [s.previous_fire_at for s in schedules]],
            )  # fmt: skip
        return
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET next_fire_at = %s, run_count = %s, last_fire_at = %s, "
            "previous_fire_at = %s WHERE id = %s",
            [(adapt(s.next_fire_at), s.run_count, adapt(s.last_fire_at),
              adapt(s.previous_fire_at), s.pk) for s in schedules],
        )  # fmt: skip


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
