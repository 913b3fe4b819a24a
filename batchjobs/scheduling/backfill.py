"""The backfill driver: keeps each running backfill at its concurrency cap, creating the
executions of its next nominal fires under the schedule's own fire key (DESIGN.md §4,
invariants 1 and 13), so a fire that beat (or another backfill) ran is never run again.

It runs when one of a backfill's executions ends (an execution_ended hook, registered in
batchjobs/apps.py), when a backfill is created or resumed, and in a periodic housekeeping pass
(batchjobs.backfills_top_up), so that a killed worker never stalls a backfill.

Decisions:
- Fire times are the schedule's nominal ones (its cron or interval, its zone and DST policy,
  inside its own start/end) without jitter: jitter spreads beat's load at fire time, while a
  backfill's runs are paced by its concurrency cap, and the fire key is the nominal time.
- A fire inside a run of fires that one occurrence record stands for (`fires` > 1, written by
  beat after an outage) keeps that record: the backfill's execution is found by its fire key,
  not in the account of occurrences. A fire recorded alone becomes FIRED with the backfill's
  execution.
- The job's overlap policy holds as for beat's runs: a job that forbids overlap runs one at a
  time (queue) or records the others SKIPPED (skip), whatever the backfill's cap.
- While the job is disabled, nothing is created; the backfill goes on when it is enabled.
- The schedule's calendars apply as in beat (firing._apply_calendars): a fire they exclude
  under "skip" gets no execution and an EXCLUDED record; one they move runs under its own fire
  key and logical time, at once when its moved-to instant is past, else waiting (unpublished)
  until then, as beat's; its record is MOVED with that instant.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter
from django.db import transaction
from django.db.models import Sum

from batchjobs.execution.publish import executions_publish_or_defer
from batchjobs.models import (
    Backfill,
    BackfillStatus,
    BatchLog,
    ExecutionStatus,
    OccurrenceOutcome,
    ScheduleOccurrence,
    Trigger,
)
from batchjobs.models.clock import database_now
from batchjobs.models.execution import ACTIVE_STATUSES
from batchjobs.models.job import OverlapPolicy
from batchjobs.models.schedule import ScheduleKind
from batchjobs.rules.cron import croniter_order

from .calendars import CalendarVerdict, schedules_calendars
from .fire_times import (
    Timing,
    fires_between,
    fires_on_grid,
    next_fire_after,
    previous_fire_before,
)
from .occurrences import Occurrence, occurrences_record

logger = logging.getLogger(__name__)

_JUST_BEFORE = timedelta(microseconds=1)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
# Fires looked at per statement, and at most per call (a call holds the backfill's row).
_CHUNK = 1000
_SCANNED_PER_CALL = 50_000


# Fires a count steps through one by one (under a second); a range holding more is estimated,
# unless its fires lie on an interval's fixed grid (counted exactly by arithmetic).
FIRES_COUNTED_EXACTLY = 10_000
# The days whose matching a cron's estimate samples: a leap cycle, so February 29 and the
# weekdays' drift weigh as they do over the years.
_SAMPLED_DAYS = 4 * 365 + 1
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class FiresCounted:
    listed: list[datetime]  # the first ones, earliest first
    total: int
    estimated: bool  # over FIRES_COUNTED_EXACTLY fires of a cron or a day interval


def backfill_fires_counted(
    timing: Timing, *, range_start: datetime, range_end: datetime, listed: int
) -> FiresCounted:
    """The first `listed` nominal fires in [range_start, range_end] and how many the range
    holds (inside the schedule's start/end): exactly for an interval on a fixed grid and for
    up to FIRES_COUNTED_EXACTLY fires, else that many stepped through and the rest estimated
    (_estimated_after). Well under a second whatever the range."""
    after = range_start - _JUST_BEFORE
    fires = fires_between(timing, after, range_end, limit=listed)
    grid = fires_on_grid(timing, after, range_end)
    if grid is not None:
        return FiresCounted(fires, grid[0], estimated=False)
    if len(fires) < listed:
        return FiresCounted(fires, len(fires), estimated=False)
    count, last = len(fires), fires[-1]
    while count < FIRES_COUNTED_EXACTLY:
        fire = next_fire_after(timing, last)
        if fire is None or fire > range_end:
            return FiresCounted(fires, count, estimated=False)
        count, last = count + 1, fire
    fire = next_fire_after(timing, last)
    if fire is None or fire > range_end:
        return FiresCounted(fires, count, estimated=False)
    until = min(range_end, timing.end_at) if timing.end_at else range_end
    return FiresCounted(fires, count + _estimated_after(timing, last, until), estimated=True)


def backfill_total_is_estimate(timing: Timing, total: int) -> bool:
    """Whether a total backfill_fires_counted gave for this timing is an estimate."""
    return total > FIRES_COUNTED_EXACTLY and fires_on_grid(timing, _EPOCH, _EPOCH) is None


def _estimated_after(timing: Timing, last: datetime, until: datetime) -> int:
    """About how many fires fall in (last, until] (at least one: the caller found one). An
    interval in days: its local days counted (a fire skipped in a DST gap is not known).
    A cron: its fires per matching day (seconds x minutes x hours) times the matching days,
    pro rata on the first and last day; DST shifts, an hour twice a year, are left out."""
    zone = ZoneInfo(timing.timezone)
    start, end = (instant.astimezone(zone).replace(tzinfo=None) for instant in (last, until))
    if timing.kind == ScheduleKind.INTERVAL:
        return max(1, (end - start) // timedelta(days=timing.interval_count))
    fields = croniter_order(timing.cron_expression).split()
    expanded, _ = croniter.expand(" ".join(fields))
    per_day = 1
    for values, size in zip([expanded[0], expanded[1], *expanded[5:]], (60, 24, 60), strict=False):
        per_day *= size if values == ["*"] else len(values)
    days = " ".join(["0", "0", *fields[2:5]])  # the expression's days, at midnight

    def matches(day: date) -> bool:
        return bool(croniter.match(days, datetime.combine(day, time())))

    if start.date() == end.date():
        days_worth = matches(start.date()) * (end - start) / _DAY
    else:
        head = matches(start.date()) * (datetime.combine(start.date() + _DAY, time()) - start)
        tail = matches(end.date()) * (end - datetime.combine(end.date(), time()))
        days_worth = (head + tail) / _DAY + _matching_days(
            days, start.date() + _DAY, end.date() - _DAY
        )
    return max(1, round(per_day * days_worth))


def _matching_days(days: str, first: date, last: date) -> float:
    """How many days from `first` to `last` the day-level cron `days` matches: counted over
    the first _SAMPLED_DAYS, scaled to the whole span."""
    span = (last - first).days + 1
    if span <= 0:
        return 0
    sampled = min(span, _SAMPLED_DAYS)
    stop = datetime.combine(first, time()) + timedelta(days=sampled)
    matched = 0
    iterator = croniter(days, datetime.combine(first, time()) - _JUST_BEFORE)
    while True:
        try:
            day = iterator.get_next(datetime)
        except (OverflowError, ValueError):  # no later day matches, or past year 9999
            break
        if day >= stop:
            break
        matched += 1
    return matched * span / sampled


def backfill_top_up(*, backfill_id: int, wait: bool = True) -> list[int] | None:
    """Create the executions of the backfill's next fires, up to its cap of active ones, in
    one transaction that holds the backfill's row (two drivers never create for one backfill
    at once); publish them once committed. `wait=False` passes a backfill another driver
    holds (the periodic pass: that driver tops it up). Returns the executions created; None
    if the backfill is not running (or held)."""
    with transaction.atomic():
        backfill = (
            Backfill.objects.select_for_update(skip_locked=not wait, of=("self",))
            .select_related("schedule__job")
            .filter(pk=backfill_id, status=BackfillStatus.RUNNING)
            .first()
        )
        if backfill is None:
            return None
        created, waiting = _top_up(backfill, now=database_now())
        due = [pk for pk in created if pk not in waiting]
        if due:
            transaction.on_commit(lambda: executions_publish_or_defer(due))
    return created


def _top_up(backfill: Backfill, *, now: datetime) -> tuple[list[int], set[int]]:
    """The executions created, and those of them waiting for a moved-to instant to come."""
    schedule, job = backfill.schedule, backfill.schedule.job
    active = backfill.executions.filter(status__in=ACTIVE_STATUSES).count()
    room = backfill.max_concurrency - active
    created: list[int] = []
    waiting: set[int] = set()
    scanned = 0
    timing = Timing.of(schedule)
    calendars = schedules_calendars(
        [(schedule.pk, schedule.timezone, schedule.calendar_policy)]
    ).get(schedule.pk)
    # Fires that already ran are passed over in the same call (a range beat covered would
    # otherwise move one cap's worth of fires per periodic pass), up to a bound per call.
    while (
        job.enabled
        and len(created) < room
        and not _passed_range(backfill)
        and scanned < _SCANNED_PER_CALL
    ):
        after = backfill.cursor or backfill.range_start - _JUST_BEFORE
        chunk = fires_between(timing, after, backfill.range_end, limit=_CHUNK)
        scanned += len(chunk)
        taken = _fires_taken(schedule.pk, chunk)
        previous = backfill.cursor or (previous_fire_before(timing, chunk[0]) if chunk else None)
        pending: list[_Pending] = []
        excluded: list[Occurrence] = []
        handled = 0
        for fire in chunk:
            if fire not in taken:
                verdict = calendars.verdict(fire) if calendars else None
                if verdict is not None and not verdict.allowed and verdict.moved_to is None:
                    excluded.append(Occurrence(schedule.pk, fire, OccurrenceOutcome.EXCLUDED,
                                               verdict.reason))  # fmt: skip
                elif len(created) + len(pending) == room:
                    break
                else:
                    pending.append(_Pending(fire, previous, verdict))
            handled += 1
            previous = fire
        made, made_waiting = _create(backfill, pending, now=now)
        _record_occurrences(backfill, excluded, now=now)
        created += made
        waiting |= made_waiting
        backfill.fires_created += len(made)
        # A fire taken meanwhile (beat, between the look and the insert) counts here too.
        backfill.fires_existing += handled - len(made) - len(excluded)
        exhausted = len(chunk) < _CHUNK and handled == len(chunk)
        backfill.cursor = backfill.range_end if exhausted else chunk[handled - 1]
    completed = _passed_range(backfill) and active + len(created) == 0
    if completed:
        backfill.status = BackfillStatus.COMPLETED
        backfill.finished_at = now
        # Counted exactly at last (a total over FIRES_COUNTED_EXACTLY was an estimate).
        backfill.fires_total = (
            backfill.fires_created + backfill.fires_existing + _fires_excluded(backfill)
        )
    backfill.save(
        update_fields=["cursor", "fires_created", "fires_existing", "status", "finished_at",
                       "fires_total"]
    )  # fmt: skip
    return created, waiting


def _fires_excluded(backfill: Backfill) -> int:
    """The fires of the backfill's range its schedule's calendars excluded (their records)."""
    return (
        ScheduleOccurrence.objects.filter(
            schedule_id=backfill.schedule_id,
            outcome=OccurrenceOutcome.EXCLUDED,
            scheduled_for__gte=backfill.range_start,
            scheduled_for__lte=backfill.range_end,
        ).aggregate(fires=Sum("fires"))["fires"]
        or 0
    )


def _passed_range(backfill: Backfill) -> bool:
    return backfill.cursor is not None and backfill.cursor >= backfill.range_end


def _fires_taken(schedule_id: int, fires: list[datetime]) -> set[datetime]:
    """Which of these fires (in order) have an execution already."""
    if not fires:
        return set()
    return {
        fire
        for fire in BatchLog.objects.filter(
            schedule_id=schedule_id, scheduled_for__gte=fires[0], scheduled_for__lte=fires[-1]
        ).values_list("scheduled_for", flat=True)
        if fire is not None  # always set: the filter bounds it
    }


@dataclass(frozen=True)
class _Pending:
    fire: datetime
    before: datetime | None  # the nominal fire before it: its data interval's start
    verdict: CalendarVerdict | None  # its calendars' (a moved fire's has moved_to)

    @property
    def moved_to(self) -> datetime | None:
        return None if self.verdict is None else self.verdict.moved_to


def _create(
    backfill: Backfill, pending: list[_Pending], *, now: datetime
) -> tuple[list[int], set[int]]:
    """Insert an execution per pending fire unless the fire key has one already (beat's or
    another backfill's, since the look); the ids created, and those waiting for their
    moved-to instant."""
    if not pending:
        return [], set()
    schedule, job = backfill.schedule, backfill.schedule.job
    params = {**job.params, **schedule.params, **backfill.params}
    BatchLog.objects.bulk_create(
        [
            BatchLog(
                job=job,
                schedule=schedule,
                scheduled_for=item.fire,
                trigger=Trigger.BACKFILL,
                backfill=backfill,
                params=params,
                status=ExecutionStatus.QUEUED,
                exclusive=job.overlap_policy != OverlapPolicy.ALLOW,
                max_attempts=job.max_attempts,
                # A fire moved to an instant still to come waits for it, as beat's.
                next_attempt_at=max(now, item.moved_to or now),
                published_at=None if item.moved_to and item.moved_to > now else now,
                logical_time=item.fire,
                # No fire before the first: the interval is the instant itself.
                data_interval_start=item.before or item.fire,
                data_interval_end=item.fire,
            )
            for item in pending
        ],
        ignore_conflicts=True,  # the fire key: beat's or another backfill's run stays
    )
    # Ours are those of this backfill: its row is locked, so no other driver made them.
    by_fire = {item.fire: item for item in pending}
    mine: dict[datetime, int] = {
        fire: pk
        for fire, pk in BatchLog.objects.filter(
            backfill=backfill, scheduled_for__in=list(by_fire)
        ).values_list("scheduled_for", "pk")
        if fire is not None  # always set: the filter names the fires
    }
    occurrences = []
    for fire, pk in sorted(mine.items()):
        verdict, moved_to = by_fire[fire].verdict, by_fire[fire].moved_to
        if verdict is not None and moved_to is not None:
            outcome, reason = OccurrenceOutcome.MOVED, verdict.reason
        else:
            outcome, reason = OccurrenceOutcome.FIRED, ""
        occurrences.append(
            Occurrence(backfill.schedule_id, fire, outcome, reason, execution_id=pk,
                       due_at=moved_to)
        )  # fmt: skip
    _record_occurrences(backfill, occurrences, now=now)
    waiting = {pk for fire, pk in mine.items() if (by_fire[fire].moved_to or now) > now}
    return sorted(mine.values()), waiting


def _record_occurrences(
    backfill: Backfill, occurrences: list[Occurrence], *, now: datetime
) -> None:
    """Record these fires' outcomes over what beat wrote, except a fire inside a run of fires
    one record stands for (that record stays)."""
    if not occurrences:
        return
    first, last = occurrences[0].scheduled_for, occurrences[-1].scheduled_for
    runs = ScheduleOccurrence.objects.filter(
        schedule_id=backfill.schedule_id,
        fires__gt=1,
        scheduled_for__lte=last,
        last_scheduled_for__gte=first,
    ).values_list("scheduled_for", "last_scheduled_for")
    # A run row always has its last fire (a constraint): `or start` only narrows the type.
    covered = [(start, end or start) for start, end in runs]
    occurrences_record(
        [
            item
            for item in occurrences
            if not any(start <= item.scheduled_for <= end for start, end in covered)
        ],
        now=now,
        overwrite=True,
    )


def backfill_execution_ended(*, execution_id: int, status: str) -> object:
    """The execution_ended hook: an ended run of a backfill frees a slot, filled at once."""
    if status in ACTIVE_STATUSES:  # a retry waits: its slot is still taken
        return None
    backfill_id = (
        BatchLog.objects.filter(pk=execution_id, backfill__status=BackfillStatus.RUNNING)
        .values_list("backfill_id", flat=True)
        .first()
    )
    return None if backfill_id is None else backfill_top_up(backfill_id=backfill_id)


def backfills_top_up(*, errors: list[str] | None = None) -> int:
    """The periodic pass: top up every running backfill, each in its own transaction. One
    that raises is logged, named in `errors` and passed (DESIGN.md §4, invariant 11); the
    next pass tries it again. Returns how many executions were created."""
    created = 0
    running = Backfill.objects.filter(status=BackfillStatus.RUNNING).order_by("created_at")
    for backfill_id in list(running.values_list("pk", flat=True)):
        try:
            result = backfill_top_up(backfill_id=backfill_id, wait=False)
        except Exception as error:
            logger.exception("backfill %s not topped up", backfill_id)
            if errors is not None:
                errors.append(f"backfill {backfill_id}: {error}")
            continue
        created += len(result or [])
    return created
