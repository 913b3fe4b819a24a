"""A schedule's next fire times as an operator previews them (admin, API, command line), with
the DST transitions between them marked, and the fires its calendars exclude or move listed
with the reason (not left out: the operator sees what the calendar does)."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from batchjobs.models.schedule import BatchSchedule

from .calendars import (
    CalendarUnusable,
    CalendarVerdict,
    ScheduleCalendars,
    schedules_calendars,
)
from .fire_times import Timing, jitter_offset, jittered, next_fire_after


@dataclass(frozen=True)
class PreviewFire:
    at: datetime  # UTC
    local: datetime  # in the schedule's zone
    utc_offset: timedelta
    dst_change: bool  # the offset differs from the previous fire's: a DST transition between
    excluded: bool = False  # its day is excluded by a calendar: it does not fire at `at`
    reason: str = ""  # why it is excluded
    moved_to: datetime | None = None  # UTC: where the calendar policy "move" puts it


def _utc_offset(instant: datetime, zone: ZoneInfo) -> timedelta:
    # An aware datetime always has an offset; typeshed allows None for naive ones.
    return cast(timedelta, instant.astimezone(zone).utcoffset())


def _verdict(calendars: ScheduleCalendars | None, nominal: datetime) -> CalendarVerdict | None:
    if calendars is None:
        return None
    try:
        return calendars.verdict(nominal)
    except CalendarUnusable as exc:  # beat sets such a schedule aside: nothing fires
        return CalendarVerdict(allowed=False, reason=str(exc))


def fires_preview(*, schedule: BatchSchedule, count: int, after: datetime) -> list[PreviewFire]:
    """The next `count` fire times after `after` (with jitter, within the runs the schedule
    has left), marking where a DST transition falls and which fires its calendars exclude or
    move (those count among the `count` listed, not among the runs left). The schedule's
    timing must be one that can be worked out (services.schedules checks it first); fires past
    year 9999 do not exist and are not listed."""
    calendars = (
        schedules_calendars([(schedule.pk, schedule.timezone, schedule.calendar_policy)]).get(
            schedule.pk
        )
        if schedule.pk
        else None
    )
    return schedule_fires(schedule=schedule, calendars=calendars, count=count, after=after)


def schedule_fires(
    *,
    schedule: BatchSchedule,
    calendars: ScheduleCalendars | None,
    count: int,
    after: datetime,
    until: datetime | None = None,
) -> list[PreviewFire]:
    """fires_preview's fires with the schedule's calendars given (schedules_calendars reads
    many schedules' at once), none past `until` if given."""
    zone = ZoneInfo(schedule.timezone)
    cursor = after
    fires: list[PreviewFire] = []
    previous_offset = _utc_offset(cursor, zone)
    runs_left = None if schedule.max_runs is None else schedule.max_runs - schedule.run_count
    jitter = jitter_offset(schedule.pk or 0, schedule.jitter_seconds)
    timing = Timing.of(schedule)
    runs = 0
    while len(fires) < count and (runs_left is None or runs < runs_left):
        nominal = next_fire_after(timing, cursor)
        at = None if nominal is None else jittered(nominal, jitter)
        if nominal is None or at is None or (until is not None and at > until):
            break
        try:
            offset = _utc_offset(nominal, zone)
            at_local = at.astimezone(zone)
        except OverflowError:  # in the zone it is already past year 9999: shown as no fire
            break
        verdict = _verdict(calendars, nominal)
        moved_to = verdict.moved_to if verdict else None
        fires.append(
            PreviewFire(
                at=at,
                local=at_local,
                utc_offset=offset,
                dst_change=offset != previous_offset,
                excluded=verdict is not None and not verdict.allowed,
                reason="" if verdict is None else verdict.reason,
                moved_to=None if moved_to is None else jittered(moved_to, jitter),
            )
        )
        runs += verdict is None or verdict.allowed or moved_to is not None
        previous_offset = offset
        cursor = nominal
    return fires
