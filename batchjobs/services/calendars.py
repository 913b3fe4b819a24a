"""Writes to exclusion calendars, and the days a calendar excludes. calendar_validate is run by
calendar_save and by the admin's form (services/validation.py), so the same rules guard every
way in. A change wakes every beat, so the schedules using the calendar follow it at once."""

from datetime import date
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from batchjobs.errors import InvalidInput
from batchjobs.models import AuditAction, BatchSchedule, Calendar
from batchjobs.rules.calendar import (
    country_errors,
    country_normalised,
    excluded_ranges,
    subdivision_errors,
    subdivision_normalised,
)
from batchjobs.scheduling.calendars import CalendarUnusable, calendar_exclusions
from batchjobs.scheduling.wakeup import schedules_changed_notify

from .audit import audit_changes, audit_record, audit_snapshot, audit_stored
from .validation import instance_validate

CALENDAR_FIELDS = ("name", "description", "country", "subdivision", "business_days_only",
                   "excluded_dates")  # fmt: skip
# The days listed at once (an admin page, an API answer): a year and a bit.
MAX_LISTED_DAYS = 400


def calendar_normalise(calendar: Calendar) -> None:
    """Country and subdivision as the holidays library spells them ("kr" is KR, "ca" is CA),
    excluded dates without surrounding spaces."""
    if isinstance(calendar.country, str):
        calendar.country = country_normalised(calendar.country)
        if isinstance(calendar.subdivision, str):
            calendar.subdivision = subdivision_normalised(calendar.country, calendar.subdivision)
    if isinstance(calendar.excluded_dates, list):
        calendar.excluded_dates = [
            entry.strip() if isinstance(entry, str) else entry for entry in calendar.excluded_dates
        ]


def calendar_validate(*, calendar: Calendar) -> None:
    """Raise Django's ValidationError mapping each bad field to its messages: a country or
    subdivision the library has no holidays for, malformed or reversed excluded dates, a name
    another calendar has."""
    errors: dict[str, list[str]] = {}
    problems = country_errors(calendar.country)
    if problems:
        errors["country"] = problems
    else:
        problems = subdivision_errors(calendar.country, calendar.subdivision)
        if problems:
            errors["subdivision"] = problems
    _ranges, problems = excluded_ranges(calendar.excluded_dates)
    if problems:
        errors["excluded_dates"] = problems
    if (
        calendar.name
        and Calendar.objects.filter(name=calendar.name).exclude(pk=calendar.pk).exists()
    ):
        errors["name"] = [_taken_message(calendar)]
    if errors:
        raise DjangoValidationError(errors)


def _taken_message(calendar: Calendar) -> str:
    return _("A calendar named %(name)s already exists.") % {"name": repr(calendar.name)}


def calendar_save(*, calendar: Calendar, user=None) -> Calendar:
    """Validate and save a calendar created or changed in memory (as the admin's form does),
    audit what changed, and wake the beats."""
    before = audit_stored(calendar)
    calendar_normalise(calendar)
    instance_validate(calendar, validate=lambda: calendar_validate(calendar=calendar))
    changes = audit_changes(before, audit_snapshot(calendar))
    if not changes:
        return calendar
    try:
        with transaction.atomic():
            calendar.save()
            action = AuditAction.CREATED if before is None else AuditAction.CHANGED
            audit_record(action=action, obj=calendar, user=user, changes=changes)
            schedules_changed_notify()
    except IntegrityError as exc:  # lost a race with another save of the same name
        raise InvalidInput({"name": _taken_message(calendar)}) from exc
    return calendar


def _assign(calendar: Calendar, fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(CALENDAR_FIELDS)
    if unknown:
        raise InvalidInput({name: _("Unknown field.") for name in sorted(unknown)})
    for name, value in fields.items():
        setattr(calendar, name, value)


def calendar_create(*, user=None, **fields: Any) -> Calendar:
    calendar = Calendar()
    _assign(calendar, fields)
    return calendar_save(calendar=calendar, user=user)


def calendar_update(*, calendar: Calendar, user=None, **fields: Any) -> Calendar:
    _assign(calendar, fields)
    return calendar_save(calendar=calendar, user=user)


def calendar_delete(*, calendar: Calendar, user=None) -> None:
    """Remove the calendar; the schedules it was attached to fire on its days again."""
    with transaction.atomic():
        audit_record(action=AuditAction.DELETED, obj=calendar, user=user)
        calendar.delete()
        schedules_changed_notify()


def calendar_days(*, calendar: Calendar, start: date, end: date) -> list[tuple[date, str]]:
    """The days from `start` to `end` (inclusive, at most MAX_LISTED_DAYS) that the calendar
    excludes, each with why (a holiday's name in the reader's language where the holidays
    library has it)."""
    if end < start:
        raise InvalidInput({"end": _("The end must not come before the start.")})
    if (end - start).days >= MAX_LISTED_DAYS:
        raise InvalidInput({"end": _("At most %(max)s days at once.") % {"max": MAX_LISTED_DAYS}})
    try:
        return calendar_exclusions(calendar, start=start, end=end)
    except CalendarUnusable as exc:  # stored behind validation's back
        raise InvalidInput({"calendar": str(exc)}) from exc


def schedule_calendars_set(
    *, schedule: BatchSchedule, calendars: list[Calendar], user=None
) -> None:
    """Attach exactly these calendars to a saved schedule, audited, and wake the beats."""
    before = sorted(schedule.calendars.values_list("name", flat=True))
    after = sorted(calendar.name for calendar in calendars)
    if before == after:
        return
    with transaction.atomic():
        schedule.calendars.set(calendars)
        audit_record(
            action=AuditAction.CHANGED, obj=schedule, user=user,
            changes={"calendars": [before, after]},
        )  # fmt: skip
        schedules_changed_notify()
