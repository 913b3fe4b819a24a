"""Schedule math: when does a schedule fire next? Pure functions of the schedule's fields.

Rules for local times (DESIGN.md §4.8, after Vixie cron and the Quartz FAQ):
- A cron expression with a wildcard or step in its minute or hour field follows real time: a
  local time inside a spring-forward gap does not exist and is not run; one inside a fall-back
  fold occurs twice and runs twice. So `0 * * * *` runs every real hour, `*/15` never leaves a
  gap and never runs twice at one instant.
- A fixed local time (cron with fixed minute and hour, or an interval in days) follows the
  schedule's DST policy: in a gap `skip` (default) or `shift` to the first instant after the
  gap; in a fold `first` (default) or `both` occurrences.
Intervals in seconds, minutes or hours are absolute durations anchored at start_at: a late fire
or a restart never moves the grid.
"""

import hashlib
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo

from croniter import croniter

from batchjobs.models.schedule import (
    DstFoldPolicy,
    DstGapPolicy,
    IntervalUnit,
    ScheduleKind,
)
from batchjobs.rules.bounds import UNIT_SECONDS
from batchjobs.rules.cron import croniter_order

# Wider than any DST shift in the tz database (Troll station shifts by two hours).
DST_WINDOW = timedelta(hours=3)


class TimingFields(Protocol):
    """The schedule fields Timing.of reads: a BatchSchedule, or firing's DueSchedule."""

    @property
    def kind(self) -> str: ...
    @property
    def timezone(self) -> str: ...
    @property
    def run_at(self) -> datetime | None: ...
    @property
    def interval_every(self) -> int | None: ...
    @property
    def interval_unit(self) -> str: ...
    @property
    def cron_expression(self) -> str: ...
    @property
    def start_at(self) -> datetime | None: ...
    @property
    def end_at(self) -> datetime | None: ...
    @property
    def dst_gap_policy(self) -> str: ...
    @property
    def dst_fold_policy(self) -> str: ...


class NextFireFields(TimingFields, Protocol):
    """The schedule fields schedule_next_fire reads, on top of its timing."""

    @property
    def pk(self) -> int | None: ...
    @property
    def max_runs(self) -> int | None: ...
    @property
    def run_count(self) -> int: ...
    @property
    def jitter_seconds(self) -> int: ...


@dataclass(frozen=True)
class Timing:
    """The fields of a schedule that decide its fire times (hashable, so results can be cached)."""

    kind: str
    timezone: str = "UTC"
    run_at: datetime | None = None
    interval_every: int | None = None
    interval_unit: str = IntervalUnit.MINUTES
    cron_expression: str = ""
    start_at: datetime | None = None
    end_at: datetime | None = None
    dst_gap_policy: str = DstGapPolicy.SKIP
    dst_fold_policy: str = DstFoldPolicy.FIRST

    @property
    def interval_count(self) -> int:
        """interval_every, which an interval schedule must have (validation requires it)."""
        if self.interval_every is None:  # a row stored behind validation's back
            raise ValueError("an interval schedule needs interval_every")
        return self.interval_every

    @classmethod
    def of(cls, schedule: TimingFields) -> "Timing":
        return cls(
            kind=schedule.kind,
            timezone=schedule.timezone,
            run_at=schedule.run_at,
            interval_every=schedule.interval_every,
            interval_unit=schedule.interval_unit,
            cron_expression=" ".join(schedule.cron_expression.split()),
            start_at=schedule.start_at,
            end_at=schedule.end_at,
            dst_gap_policy=schedule.dst_gap_policy,
            dst_fold_policy=schedule.dst_fold_policy,
        )


def cron_follows_real_time(expression: str) -> bool:
    fields = expression.split()
    minute, hour = (fields[1], fields[2]) if len(fields) == 6 else (fields[0], fields[1])
    return any(mark in minute + hour for mark in "*/")


def _transition_instant(low: datetime, high: datetime, zone: ZoneInfo) -> datetime:
    """The instant in [low, high] at which the zone's UTC offset changes (to the second)."""
    offset_before = low.astimezone(zone).utcoffset()
    low_s, high_s = int(low.timestamp()), int(high.timestamp())
    while high_s - low_s > 1:
        middle = (low_s + high_s) // 2
        if datetime.fromtimestamp(middle, UTC).astimezone(zone).utcoffset() == offset_before:
            low_s = middle
        else:
            high_s = middle
    return datetime.fromtimestamp(high_s, UTC)


def local_instants(
    naive: datetime, zone: ZoneInfo, *, real_time: bool, gap_policy: str, fold_policy: str
) -> list[datetime]:
    """The UTC instants at which the local wall-clock time `naive` is to fire, in order."""
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    exists = first.astimezone(zone).replace(tzinfo=None) == naive
    if not exists:  # in a spring-forward gap
        if real_time or gap_policy == DstGapPolicy.SKIP:
            return []
        low, high = sorted((first, second))
        return [_transition_instant(low, high, zone)]
    if second != first and second.astimezone(zone).replace(tzinfo=None) == naive:  # a fold
        if real_time or fold_policy == DstFoldPolicy.BOTH:
            return sorted((first, second))
        return [min(first, second)]
    return [first]


def dst_shift_near(zone: ZoneInfo, instant: datetime) -> timedelta:
    """How far the zone's UTC offset moves within DST_WINDOW of `instant` (0 almost always)."""
    # An aware datetime in a ZoneInfo always has an offset: `or timedelta(0)` only narrows None.
    offsets = {
        (instant + delta).astimezone(zone).utcoffset() or timedelta(0)
        for delta in (-DST_WINDOW, timedelta(0), DST_WINDOW)
    }
    return max(offsets) - min(offsets)


def _local_naive(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _next_local(
    naive_times, after: datetime, zone: ZoneInfo, *, real_time: bool, timing: Timing
) -> datetime | None:
    """The earliest instant after `after` among the local times produced by `naive_times`
    (in increasing local order). Local order and instant order differ only near a DST shift,
    so the scan goes on past the best instant's local time by that shift, usually zero."""
    best = stop_after = None
    for naive in naive_times:
        if stop_after is not None and naive > stop_after:
            return best
        for instant in local_instants(
            naive,
            zone,
            real_time=real_time,
            gap_policy=timing.dst_gap_policy,
            fold_policy=timing.dst_fold_policy,
        ):
            if instant > after and (best is None or instant < best):
                best = instant
                shift = dst_shift_near(zone, best)
                if not shift:  # local order is instant order here: nothing later can beat it
                    return best
                stop_after = _local_naive(best, zone) + shift
    return best


_parsed_crons = threading.local()


def _cron_naive_times(expression: str, start_naive: datetime):
    # Parsing costs more than stepping: keep one parsed iterator per expression and thread.
    cache = _parsed_crons.__dict__.setdefault("by_expression", {})
    iterator = cache.get(expression)
    if iterator is None:
        iterator = cache[expression] = croniter(croniter_order(expression), start_naive)
    iterator.set_current(start_naive, force=True)
    while True:
        try:
            naive = iterator.get_next(datetime)
        # No later date matches (CroniterBadDateError, a ValueError), or the next one is past
        # year 9999 (croniter and dateutil raise OverflowError or ValueError): no fires are left.
        except (OverflowError, ValueError):
            return
        yield naive


def _days_naive_times(anchor_local: datetime, every: int, start_naive: datetime):
    periods = max(0, (start_naive - anchor_local).days // every)
    while True:
        try:
            naive = anchor_local + timedelta(days=periods * every)
        except OverflowError:  # past year 9999: the calendar has no later day
            return
        if naive > start_naive:
            yield naive
        periods += 1


def _interval_anchor(timing: Timing) -> datetime:
    return timing.start_at or datetime(2000, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=4096)
def _next_unbounded(timing: Timing, after: datetime) -> datetime | None:
    """The first fire strictly after `after`, ignoring end_at (start_at anchors intervals)."""
    zone = ZoneInfo(timing.timezone)
    if timing.kind == ScheduleKind.ONCE:
        return timing.run_at if timing.run_at and timing.run_at > after else None
    if timing.kind == ScheduleKind.INTERVAL and timing.interval_unit != IntervalUnit.DAYS:
        step = timing.interval_count * UNIT_SECONDS[timing.interval_unit]
        anchor = _interval_anchor(timing)
        if after < anchor:
            return anchor
        periods = int((after - anchor).total_seconds() // step) + 1
        candidate = anchor + timedelta(seconds=periods * step)
        # Float rounding must never yield a fire at or before `after`.
        return candidate if candidate > after else candidate + timedelta(seconds=step)
    # A fold just ahead can put a local time earlier than after's at a later instant.
    start_naive = _local_naive(after, zone) - dst_shift_near(zone, after)
    if timing.kind == ScheduleKind.INTERVAL:  # days: a fixed local time every N days
        anchor_local = _interval_anchor(timing).astimezone(zone).replace(tzinfo=None)
        naive_times = _days_naive_times(anchor_local, timing.interval_count, start_naive)
        return _next_local(naive_times, after, zone, real_time=False, timing=timing)
    naive_times = _cron_naive_times(timing.cron_expression, start_naive)
    real_time = cron_follows_real_time(timing.cron_expression)
    return _next_local(naive_times, after, zone, real_time=real_time, timing=timing)


def next_fire_after(timing: Timing, after: datetime) -> datetime | None:
    """The schedule's first nominal fire time strictly after `after`, inside start/end; None
    once it has finished, which includes a next fire past the last instant datetime can hold
    (year 9999): a schedule stored behind validation's back must finish, not raise."""
    try:
        if timing.start_at and after < timing.start_at:
            after = timing.start_at - timedelta(microseconds=1)
        fire = _next_unbounded(timing, after)
    except OverflowError:
        return None
    if fire is None or (timing.end_at and fire > timing.end_at):
        return None
    return fire


def fires_on_grid(timing: Timing, after: datetime, until: datetime) -> tuple[int, datetime] | None:
    """For an interval in seconds, minutes or hours (a fixed grid anchored at start_at): how
    many fires fall in (after, until], inside start/end, and the last of them, by arithmetic
    in whole microseconds (a century of seconds counts at once); (0, after) when none does.
    None for any other timing, whose fires are stepped through."""
    if timing.kind != ScheduleKind.INTERVAL or timing.interval_unit == IntervalUnit.DAYS:
        return None
    first = next_fire_after(timing, after)
    end = min(until, timing.end_at) if timing.end_at else until
    if first is None or first > end:
        return 0, after
    step = timedelta(seconds=timing.interval_count * UNIT_SECONDS[timing.interval_unit])
    count = (end - first) // step + 1
    return count, first + (count - 1) * step


def fires_between(
    timing: Timing, after: datetime, until: datetime, *, limit: int
) -> list[datetime]:
    """Nominal fire times in (after, until], at most `limit` of them, earliest first."""
    fires: list[datetime] = []
    fire = next_fire_after(timing, after)
    while fire is not None and fire <= until and len(fires) < limit:
        fires.append(fire)
        fire = next_fire_after(timing, fire)
    return fires


def jittered(nominal: datetime, jitter: timedelta) -> datetime | None:
    """The nominal fire time delayed by the schedule's jitter; None past year 9999."""
    try:
        return nominal + jitter
    except OverflowError:
        return None


def jitter_offset(schedule_id: int, jitter_seconds: int) -> timedelta:
    """A delay in [0, jitter_seconds], fixed per schedule: fires spread out, yet predictably."""
    if not jitter_seconds:
        return timedelta(0)
    digest = hashlib.sha256(f"batchjobs-jitter-{schedule_id}".encode()).digest()
    return timedelta(seconds=int.from_bytes(digest[:8], "big") % (jitter_seconds + 1))


def schedule_next_fire(*, schedule: NextFireFields, after: datetime) -> datetime | None:
    """When the schedule is next due after `after`: its nominal fire time plus its jitter,
    or None once it has finished (past its end, its max runs, or its one run)."""
    if schedule.max_runs is not None and schedule.run_count >= schedule.max_runs:
        return None
    nominal = next_fire_after(Timing.of(schedule), after)
    if nominal is None:
        return None
    return jittered(nominal, jitter_offset(schedule.pk or 0, schedule.jitter_seconds))


# How far back previous_fire_before looks for a cron or daily schedule with no start_at: longer
# than any gap between two fires of a valid expression (Feb 29 on a given weekday: 28 years).
PREVIOUS_FIRE_LOOKBACK = timedelta(days=366 * 60)
_ONE_MICROSECOND = timedelta(microseconds=1)


def _previous_interval_fire(timing: Timing, limit: datetime) -> datetime | None:
    """The last grid point anchor + k*step strictly before `limit`, in integer microseconds
    (the grid is exact, so no float rounding can pick a neighbour)."""
    anchor = _interval_anchor(timing)
    if limit <= anchor:
        return None
    step = timedelta(seconds=timing.interval_count * UNIT_SECONDS[timing.interval_unit])
    periods = (limit - anchor - _ONE_MICROSECOND) // step
    return anchor + periods * step


def _previous_searched_fire(timing: Timing, limit: datetime) -> datetime | None:
    """The last fire strictly before `limit`, found with the forward math only (so the DST
    rules are the same by construction): a window growing backwards until it holds a fire,
    then a bisection to the last fire in it, each probe one next_fire_after."""
    window = timedelta(minutes=1)
    while True:
        try:
            low = limit - window
        except OverflowError:  # before year 1: there is no earlier fire to find
            return None
        last_window = window >= PREVIOUS_FIRE_LOOKBACK
        if timing.start_at is not None and low < timing.start_at:
            low, last_window = timing.start_at - _ONE_MICROSECOND, True
        fire = next_fire_after(timing, low)
        if fire is not None and fire < limit:
            break
        if last_window:
            return None
        window *= 2
    # `fire` is a fire before limit; every fire before limit is at or before `high`.
    high = limit
    while True:
        following = next_fire_after(timing, fire)
        if following is None or following >= limit:
            return fire
        fire = following
        middle = fire + (high - fire) / 2
        probe = next_fire_after(timing, middle)
        if probe is not None and probe < limit:
            fire = probe
        else:  # nothing in (middle, limit): the last fire is in (fire, middle]
            high = middle


def previous_fire_before(timing: Timing, instant: datetime) -> datetime | None:
    """The schedule's latest nominal fire time strictly before `instant`, inside start/end:
    the start of the data interval of a run at `instant`. None for a once schedule, or when
    no fire precedes `instant` (before start_at, or, without one, within PREVIOUS_FIRE_LOOKBACK).

    The inverse of next_fire_after: for any fire F, previous_fire_before(F) is the fire that
    next_fire_after steps from to reach F, DST rules included."""
    if timing.kind == ScheduleKind.ONCE:
        return None
    limit = instant
    if timing.end_at is not None and timing.end_at < instant:
        limit = timing.end_at + _ONE_MICROSECOND  # fires at or before end_at count
    try:
        if timing.kind == ScheduleKind.INTERVAL and timing.interval_unit != IntervalUnit.DAYS:
            return _previous_interval_fire(timing, limit)
        return _previous_searched_fire(timing, limit)
    except OverflowError:  # an end_at or anchor at the edge of the calendar
        return None
