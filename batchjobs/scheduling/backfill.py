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
"""

import logging
from datetime import UTC, datetime, timedelta

from django.db import transaction

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

from .fire_times import Timing, fires_between, next_fire_after
from .occurrences import Occurrence, occurrences_record

logger = logging.getLogger(__name__)

_JUST_BEFORE = timedelta(microseconds=1)
# Fires looked at per statement, and at most per call (a call holds the backfill's row).
_CHUNK = 1000
_SCANNED_PER_CALL = 50_000
# How far back the fire before a backfill's first is looked for (the start of its first run's
# data interval): a schedule's longest interval (100 years, rules/bounds.py) and a margin.
_PREVIOUS_FIRE_LOOKBACK = timedelta(days=366 * 101)


def backfill_fires_counted(
    timing: Timing, *, range_start: datetime, range_end: datetime, listed: int, limit: int
) -> tuple[list[datetime], int]:
    """The first `listed` nominal fires in [range_start, range_end], earliest first, and how
    many fires the range holds, counted up to `limit` (a million fires count in seconds, in
    constant memory: only those listed are kept)."""
    fires: list[datetime] = []
    count = 0
    fire = next_fire_after(timing, range_start - _JUST_BEFORE)
    while fire is not None and fire <= range_end and count < limit:
        if count < listed:
            fires.append(fire)
        count += 1
        fire = next_fire_after(timing, fire)
    return fires, count


def fire_before(timing: Timing, instant: datetime) -> datetime | None:
    """The schedule's last nominal fire strictly before `instant`, None if it has none. The
    window looked back doubles from a second: a few steps find a frequent schedule's, some
    thirty a yearly one's, and the first window holding a fire holds only a few of them."""
    until = instant - _JUST_BEFORE
    span = timedelta(seconds=1)
    while span <= _PREVIOUS_FIRE_LOOKBACK:
        try:
            low = instant - span
        except OverflowError:  # before year 1: nothing earlier to find
            low, span = datetime.min.replace(tzinfo=UTC), _PREVIOUS_FIRE_LOOKBACK
        fires = fires_between(timing, low, until, limit=1000)
        while len(fires) == 1000:  # an irregular schedule: read on to the last one
            fires = fires_between(timing, fires[-1] - _JUST_BEFORE, until, limit=1000)
        if fires:
            return fires[-1]
        span *= 2
    return None


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
        created = _top_up(backfill, now=database_now())
        if created:
            transaction.on_commit(lambda: executions_publish_or_defer(created))
    return created


def _top_up(backfill: Backfill, *, now: datetime) -> list[int]:
    schedule, job = backfill.schedule, backfill.schedule.job
    active = backfill.executions.filter(status__in=ACTIVE_STATUSES).count()
    room = backfill.max_concurrency - active
    created: list[int] = []
    scanned = 0
    timing = Timing.of(schedule)
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
        previous = backfill.cursor or (fire_before(timing, chunk[0]) if chunk else None)
        pending: list[tuple[datetime, datetime | None]] = []  # (fire, the fire before it)
        handled = 0
        for fire in chunk:
            if fire not in taken:
                if len(created) + len(pending) == room:
                    break
                pending.append((fire, previous))
            handled += 1
            previous = fire
        made = _create(backfill, pending, now=now)
        created += made
        backfill.fires_created += len(made)
        # A fire taken meanwhile (beat, between the look and the insert) counts here too.
        backfill.fires_existing += handled - len(made)
        exhausted = len(chunk) < _CHUNK and handled == len(chunk)
        backfill.cursor = backfill.range_end if exhausted else chunk[handled - 1]
    completed = _passed_range(backfill) and active + len(created) == 0
    if completed:
        backfill.status = BackfillStatus.COMPLETED
        backfill.finished_at = now
        # Counted exactly at last (a confirmed backfill over the counting bound had a floor).
        backfill.fires_total = backfill.fires_created + backfill.fires_existing
    backfill.save(
        update_fields=["cursor", "fires_created", "fires_existing", "status", "finished_at",
                       "fires_total"]
    )  # fmt: skip
    return created


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


def _create(
    backfill: Backfill, pending: list[tuple[datetime, datetime | None]], *, now: datetime
) -> list[int]:
    """Insert an execution per (fire, the nominal fire before it) unless the fire key has
    one already (beat's or another backfill's, since the look); the ids created."""
    if not pending:
        return []
    schedule, job = backfill.schedule, backfill.schedule.job
    params = {**job.params, **schedule.params, **backfill.params}
    BatchLog.objects.bulk_create(
        [
            BatchLog(
                job=job,
                schedule=schedule,
                scheduled_for=fire,
                trigger=Trigger.BACKFILL,
                backfill=backfill,
                params=params,
                status=ExecutionStatus.QUEUED,
                exclusive=job.overlap_policy != OverlapPolicy.ALLOW,
                max_attempts=job.max_attempts,
                next_attempt_at=now,
                published_at=now,
                logical_time=fire,
                # No fire before the first: the interval is the instant itself.
                data_interval_start=before or fire,
                data_interval_end=fire,
            )
            for fire, before in pending
        ],
        ignore_conflicts=True,  # the fire key: beat's or another backfill's run stays
    )
    # Ours are those of this backfill: its row is locked, so no other driver made them.
    fires = [fire for fire, _ in pending]
    mine: dict[datetime, int] = {
        fire: pk
        for fire, pk in BatchLog.objects.filter(
            backfill=backfill, scheduled_for__in=fires
        ).values_list("scheduled_for", "pk")
        if fire is not None  # always set: the filter names the fires
    }
    _record_occurrences(backfill, mine, now=now)
    return sorted(mine.values())


def _record_occurrences(backfill: Backfill, mine: dict[datetime, int], *, now: datetime) -> None:
    if not mine:
        return
    first, last = min(mine), max(mine)
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
            Occurrence(
                schedule_id=backfill.schedule_id,
                scheduled_for=fire,
                outcome=OccurrenceOutcome.FIRED,
                execution_id=pk,
            )
            for fire, pk in sorted(mine.items())
            if not any(start <= fire <= end for start, end in covered)
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
