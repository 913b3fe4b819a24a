"""The account of a schedule's nominal fires: one ScheduleOccurrence per fire (or per run of
consecutive fires with one fate), written by whoever decides the fire's fate — beat, a resume
after a pause, a backfill — through occurrences_record, so the key (schedule, scheduled_for)
keeps each fire in the account once."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.utils.translation import gettext

from batchjobs.execution.hot_sql import Table, server_bound_cursor, sql_literal
from batchjobs.models import (
    BatchLog,
    BatchSchedule,
    OccurrenceOutcome,
    ScheduleOccurrence,
)

from .fire_times import Timing, fires_between, fires_on_grid, jitter_offset, next_fire_after

# The fields a later, better-informed writer may change on an existing row (a backfill that
# runs a fire beat had recorded missed).
_OVERWRITTEN = ("outcome", "reason", "execution", "due_at", "recorded_at")
# At most this many fires of one schedule get a row each in one event (a beat pass, a resume);
# the older ones fold into a run row: a week's outage of a schedule that fires every second
# is a few rows, not 600,000.
OCCURRENCE_ROWS_PER_EVENT = 1000


@dataclass(frozen=True)
class Occurrence:
    schedule_id: int
    scheduled_for: datetime  # the nominal fire time (the first of a run of fires)
    outcome: OccurrenceOutcome
    reason: str = ""
    execution_id: int | None = None
    last_scheduled_for: datetime | None = None  # a run of fires: the last nominal time in it
    fires: int = 1
    due_at: datetime | None = None  # a moved fire: when its execution runs


@dataclass(frozen=True)
class FireRun:
    """Consecutive nominal fires counted, not listed: `count` of them, `first` to `last`."""

    first: datetime
    last: datetime
    count: int

    @classmethod
    def of(cls, fires: Sequence[datetime]) -> "FireRun":
        return cls(first=fires[0], last=fires[-1], count=len(fires))


def fires_counted(timing: Timing, after: datetime, until: datetime) -> FireRun | None:
    """The fires in (after, until], counted without keeping them: by arithmetic on the fixed
    grid of an interval in seconds, minutes or hours, else one step at a time."""
    first = next_fire_after(timing, after)
    if first is None or first > until:
        return None
    grid = fires_on_grid(timing, after, until)
    if grid is not None:
        count, last = grid
        return FireRun(first=first, last=last, count=count)
    count, last = 1, first
    while (fire := next_fire_after(timing, last)) is not None and fire <= until:
        count, last = count + 1, fire
    return FireRun(first=first, last=last, count=count)


def occurrences_of_pause(
    *, schedule: BatchSchedule, now: datetime
) -> tuple[list[Occurrence], datetime | None]:
    """The PAUSED records of the nominal fires a paused schedule passed by, from its next
    fire through `now` (its first OCCURRENCE_ROWS_PER_EVENT a row each, the rest one run
    row), and the last of those fires. Fires that were already overdue when it was paused
    (beat was down) are in them too: the pause is what decided they would not run."""
    if schedule.next_fire_at is None:
        return [], None
    timing = Timing.of(schedule)
    first = schedule.next_fire_at - jitter_offset(schedule.pk, schedule.jitter_seconds)
    listed = fires_between(
        timing, first - timedelta(microseconds=1), now, limit=OCCURRENCE_ROWS_PER_EVENT
    )
    if schedule.paused_at is None:  # paused before the pause time was kept
        reason = gettext("the schedule was paused")
    else:
        reason = gettext("the schedule was paused from %(since)s to %(until)s UTC") % {
            "since": f"{schedule.paused_at:%Y-%m-%d %H:%M:%S}",
            "until": f"{now:%Y-%m-%d %H:%M:%S}",
        }
    paused = OccurrenceOutcome.PAUSED
    occurrences = [Occurrence(schedule.pk, fire, paused, reason) for fire in listed]
    last = listed[-1] if listed else None
    if len(listed) == OCCURRENCE_ROWS_PER_EVENT:
        rest = fires_counted(timing, listed[-1], now)
        if rest is not None:
            occurrences.append(occurrence_of_run(schedule.pk, rest, paused, reason))
            last = rest.last
    return occurrences, last


def occurrence_of_run(
    schedule_id: int, run: FireRun, outcome: OccurrenceOutcome, reason: str
) -> Occurrence:
    """One row for the run (a run of one fire is a plain row)."""
    if run.count == 1:
        return Occurrence(schedule_id, run.first, outcome, reason)
    return Occurrence(
        schedule_id, run.first, outcome, reason, last_scheduled_for=run.last, fires=run.count
    )


def occurrences_of_fires(
    schedule_id: int,
    fires: Sequence[datetime],
    outcome: OccurrenceOutcome,
    reason: str,
    *,
    rows: int = OCCURRENCE_ROWS_PER_EVENT,
) -> list[Occurrence]:
    """The rows of listed fires with one fate: the latest `rows` of them one row each, the
    older ones folded into one run row before them."""
    if not fires:
        return []
    folded = len(fires) - max(rows, 0)
    result = []
    if folded > 0:
        result.append(occurrence_of_run(schedule_id, FireRun.of(fires[:folded]), outcome, reason))
        fires = fires[folded:]
    result += [Occurrence(schedule_id, fire, outcome, reason) for fire in fires]
    return result


def occurrences_record(
    occurrences: list[Occurrence], *, now: datetime, overwrite: bool = False
) -> None:
    """Record what became of these fires. A fire already in the account keeps its row unless
    `overwrite`, which replaces the row's outcome, reason, execution and due time. On
    PostgreSQL one INSERT of unnested arrays (beat writes thousands of rows per batch)."""
    if not occurrences:
        return
    if connection.vendor == "postgresql":
        _record_unnested(occurrences, now=now, overwrite=overwrite)
        return
    rows = [
        ScheduleOccurrence(
            schedule_id=item.schedule_id,
            scheduled_for=item.scheduled_for,
            last_scheduled_for=item.last_scheduled_for,
            fires=item.fires,
            outcome=item.outcome,
            reason=item.reason[:500],
            execution_id=item.execution_id,
            due_at=item.due_at,
            recorded_at=now,
        )
        for item in occurrences
    ]
    if overwrite:
        ScheduleOccurrence.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["schedule", "scheduled_for"],
            update_fields=list(_OVERWRITTEN),
        )
    else:
        ScheduleOccurrence.objects.bulk_create(rows, ignore_conflicts=True)


_OCCURRENCE = Table(ScheduleOccurrence)
_EXECUTION = Table(BatchLog)


def occurrences_fired_sql(made: str) -> str:
    """PostgreSQL: an INSERT of the FIRED record of each execution in `made`, a relation of
    executions (beat's INSERT ... RETURNING, as a CTE, with the id, schedule and scheduled_for
    columns), recorded at one %b parameter; a fire already in the account keeps its row."""
    columns = (_OCCURRENCE.schedule, _OCCURRENCE.scheduled_for, _OCCURRENCE.fires,
               _OCCURRENCE.outcome, _OCCURRENCE.reason, _OCCURRENCE.execution,
               _OCCURRENCE.recorded_at)  # fmt: skip
    fired = sql_literal(OccurrenceOutcome.FIRED.value)
    return (
        f"INSERT INTO {_OCCURRENCE} ({', '.join(columns)}) "
        f"SELECT {_EXECUTION.schedule}, {_EXECUTION.scheduled_for}, 1, {fired}, '', "
        f"{_EXECUTION.id}, %b FROM {made} "
        f"ON CONFLICT ({_OCCURRENCE.schedule}, {_OCCURRENCE.scheduled_for}) DO NOTHING"
    )


# The columns the rows fill, with their array types; recorded_at is one value for all.
_UNNESTED = (
    ("schedule", "bigint"), ("scheduled_for", "timestamptz"),
    ("last_scheduled_for", "timestamptz"), ("fires", "integer"), ("outcome", "text"),
    ("reason", "text"), ("execution", "bigint"), ("due_at", "timestamptz"),
)  # fmt: skip


def _record_unnested(occurrences: list[Occurrence], *, now: datetime, overwrite: bool) -> None:
    columns = [getattr(_OCCURRENCE, name) for name, _ in _UNNESTED]
    # Bound in binary, as beat's execution INSERT: text dumping of the arrays cost 10x more.
    arrays = ", ".join(f"%b::{kind}[]" for _, kind in _UNNESTED)
    key = f"{_OCCURRENCE.schedule}, {_OCCURRENCE.scheduled_for}"
    if overwrite:
        updated = ", ".join(
            f"{column} = EXCLUDED.{column}"
            for column in (getattr(_OCCURRENCE, name) for name in _OVERWRITTEN)
        )
        conflict = f"ON CONFLICT ({key}) DO UPDATE SET {updated}"
    else:
        conflict = f"ON CONFLICT ({key}) DO NOTHING"
    sql = (
        f"INSERT INTO {_OCCURRENCE} ({', '.join(columns)}, {_OCCURRENCE.recorded_at}) "
        f"SELECT v.*, %b FROM unnest({arrays}) AS v({', '.join(columns)}) {conflict}"
    )
    values = [
        [item.schedule_id for item in occurrences],
        [item.scheduled_for for item in occurrences],
        [item.last_scheduled_for for item in occurrences],
        [item.fires for item in occurrences],
        [str(item.outcome) for item in occurrences],
        [item.reason[:500] for item in occurrences],
        [item.execution_id for item in occurrences],
        [item.due_at for item in occurrences],
    ]
    with server_bound_cursor() as cursor:
        cursor.execute(sql, [now, *values])
