"""Which fires a schedule's exclusion calendars allow, and where the "move" policy puts the
others. A day is excluded by a calendar when it is a public holiday of the calendar's country
(and subdivision), a Saturday or Sunday of a business-days-only calendar, or one of its custom
dates or ranges; a fire is judged on its local date in the schedule's time zone.

Beat asks for up to a thousand schedules at once (schedules_calendars: one query), and the
holidays of each (country, subdivision, year, language) are worked out once per process."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils.dates import WEEKDAYS
from django.utils.translation import get_language, gettext

from batchjobs.models import BatchSchedule, Calendar, CalendarPolicy, DstFoldPolicy, DstGapPolicy
from batchjobs.rules.calendar import country_holidays, excluded_ranges, holiday_language

from .fire_times import local_instants

# How far "move" looks for an allowed day; a calendar that excludes a whole year leaves the
# fire excluded, with the reason saying so.
MAX_MOVE_DAYS = 366


class CalendarUnusable(ValueError):
    """A calendar stored behind validation's back (an unknown country, a malformed date) cannot
    judge a day: the schedule is set aside with this message, the others go on."""


@dataclass(frozen=True)
class CalendarVerdict:
    """What a schedule's calendars make of one fire. allowed: fire it as due. Not allowed with
    moved_to: run it at moved_to instead (policy "move"; several excluded fires may move onto
    the same instant, or onto a regular fire: beat keeps each under its own nominal fire).
    Not allowed without moved_to: the fire is excluded (policy "skip", or no allowed day
    within MAX_MOVE_DAYS)."""

    allowed: bool
    reason: str = ""  # why the fire's day is excluded, in the deployment's language
    moved_to: datetime | None = None  # UTC


@dataclass(frozen=True)
class CalendarDays:
    """One calendar as the scheduler reads it."""

    name: str
    country: str
    subdivision: str
    business_days_only: bool
    ranges: tuple[tuple[date, date], ...]
    problem: str = ""  # why it cannot judge a day (see CalendarUnusable)
    # (day, language) -> exclusion(): the schedules of a beat batch share calendars and days.
    _known: dict[tuple[date, str], str] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    @classmethod
    def of(cls, calendar: Calendar) -> "CalendarDays":
        return cls.read(
            name=calendar.name,
            country=calendar.country,
            subdivision=calendar.subdivision,
            business_days_only=calendar.business_days_only,
            excluded_dates=calendar.excluded_dates,
        )

    @classmethod
    def read(
        cls,
        *,
        name: str,
        country: str,
        subdivision: str,
        business_days_only: bool,
        excluded_dates: object,
    ) -> "CalendarDays":
        ranges, errors = excluded_ranges(excluded_dates)
        return cls(
            name=name,
            country=country,
            subdivision=subdivision,
            business_days_only=business_days_only,
            ranges=tuple(ranges),
            problem=" ".join(errors),
        )

    def exclusion(self, day: date, language: str) -> str:
        """Why the calendar excludes `day` (a holiday's name, a weekday, a custom date, in
        `language` where the holidays library has it), or ""."""
        key = (day, language)
        if key not in self._known:
            self._known[key] = self._exclusion(day, language)
        return self._known[key]

    def _exclusion(self, day: date, language: str) -> str:
        if self.problem:
            raise CalendarUnusable(
                gettext("Calendar %(name)s cannot be used: %(problem)s")
                % {"name": repr(self.name), "problem": self.problem}
            )
        if self.country:
            try:
                holidays = country_holidays(
                    self.country,
                    self.subdivision,
                    day.year,
                    holiday_language(self.country, language),
                )
            except NotImplementedError as exc:  # the library knows no such country/subdivision
                raise CalendarUnusable(
                    gettext("Calendar %(name)s cannot be used: %(problem)s")
                    % {"name": repr(self.name), "problem": str(exc)}
                ) from exc
            name = holidays.get(day)
            if name:
                return name
        for start, end in self.ranges:
            if start <= day <= end:
                if start == end:
                    return gettext("a custom excluded date")
                return gettext("custom excluded range %(start)s..%(end)s") % {
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                }
        if self.business_days_only and day.weekday() >= 5:
            return str(WEEKDAYS[day.weekday()])
        return ""


def _language() -> str:
    # Read once per verdict: the active language is a context-local lookup, not free.
    return get_language() or settings.LANGUAGE_CODE


def calendar_exclusions(calendar: Calendar, *, start: date, end: date) -> list[tuple[date, str]]:
    """The days from `start` to `end` (inclusive) that the calendar excludes, with why."""
    days, language = CalendarDays.of(calendar), _language()
    found = []
    for offset in range((end - start).days + 1):
        day = start + timedelta(days=offset)
        reason = days.exclusion(day, language)
        if reason:
            found.append((day, reason))
    return found


@dataclass(frozen=True)
class ScheduleCalendars:
    """One schedule's calendars (ordered by name), time zone and calendar policy."""

    timezone: str  # read when judging, so a bad zone sets aside this schedule alone
    policy: str
    calendars: tuple[CalendarDays, ...]

    def excluded(self, day: date, language: str) -> str:
        """Why `day` is excluded ("2027-02-09 is excluded by calendar 'KR': 설날 대체 휴일"), or
        "" when every calendar allows it."""
        for calendar in self.calendars:
            why = calendar.exclusion(day, language)
            if why:
                return gettext("%(day)s is excluded by calendar %(name)s: %(why)s") % {
                    "day": day.isoformat(),
                    "name": repr(calendar.name),
                    "why": why,
                }
        return ""

    def verdict(self, fire: datetime) -> CalendarVerdict:
        """`fire` (aware) judged on its local date in the schedule's zone."""
        zone = ZoneInfo(self.timezone)
        local = fire.astimezone(zone)
        language = _language()
        reason = self.excluded(local.date(), language)
        if not reason:
            return CalendarVerdict(allowed=True)
        if self.policy != CalendarPolicy.MOVE:
            return CalendarVerdict(allowed=False, reason=reason)
        # Never past the last day a datetime holds (the year 9999 ends the search too).
        last = min(MAX_MOVE_DAYS, (date.max - local.date()).days - 1)
        for offset in range(1, last + 1):
            day = local.date() + timedelta(days=offset)
            if not self.excluded(day, language):
                return CalendarVerdict(
                    allowed=False,
                    reason=reason,
                    moved_to=_same_wall_time(day, local.time(), zone),
                )
        return CalendarVerdict(
            allowed=False,
            reason=gettext("%(reason)s; no allowed day follows within %(days)s days")
            % {"reason": reason, "days": MAX_MOVE_DAYS},
        )


def _same_wall_time(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The local wall time on `day`: its first occurrence in a fall-back fold, the first
    instant after the gap when spring-forward skips it."""
    naive = datetime.combine(day, wall.replace(tzinfo=None, fold=0))
    (instant, *_later) = local_instants(
        naive, zone, real_time=False, gap_policy=DstGapPolicy.SHIFT, fold_policy=DstFoldPolicy.FIRST
    )
    return instant.astimezone(UTC)


def schedules_calendars(schedules: Iterable[tuple[int, str, str]]) -> dict[int, ScheduleCalendars]:
    """(schedule id, time zone, calendar policy) -> the calendars of each schedule that has at
    least one; schedules without are left out. One query for all."""
    wanted = {schedule_id: (zone, policy) for schedule_id, zone, policy in schedules}
    if not wanted:
        return {}
    through: Any = BatchSchedule.calendars.through  # django-stubs cannot type an auto M2M table
    # Plain rows, no model instances: beat reads up to a thousand schedules' links per batch.
    links = (
        through.objects.filter(batchschedule_id__in=list(wanted))
        .order_by("batchschedule_id", "calendar__name")
        .values_list(
            "batchschedule_id", "calendar_id", "calendar__name", "calendar__country",
            "calendar__subdivision", "calendar__business_days_only", "calendar__excluded_dates",
        )
    )  # fmt: skip
    read: dict[int, CalendarDays] = {}  # a calendar many schedules share is read once
    by_schedule: dict[int, list[CalendarDays]] = {}
    for schedule_id, calendar_id, name, country, subdivision, weekdays, excluded in links:
        if calendar_id not in read:
            read[calendar_id] = CalendarDays.read(
                name=name,
                country=country,
                subdivision=subdivision,
                business_days_only=weekdays,
                excluded_dates=excluded,
            )
        by_schedule.setdefault(schedule_id, []).append(read[calendar_id])
    return {
        schedule_id: ScheduleCalendars(
            timezone=wanted[schedule_id][0],
            policy=wanted[schedule_id][1],
            calendars=tuple(calendars),
        )
        for schedule_id, calendars in by_schedule.items()
    }
