"""Writes to schedules. schedule_validate is reached from BatchSchedule.clean() too."""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import croniter
from django.core.exceptions import ValidationError as DjangoValidationError

from batchjobs.models import BatchSchedule, ScheduleKind


def timezone_errors(name: str) -> list[str]:
    if not name:
        return ["Name an IANA time zone such as Europe/Berlin or UTC."]
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return [f"Unknown time zone {name!r}; use an IANA name such as Europe/Berlin."]
    if name not in available_timezones() and name != "UTC":
        return [f"Unknown time zone {name!r}; use an IANA name such as Europe/Berlin."]
    return []


def cron_errors(expression: str) -> list[str]:
    fields = expression.split()
    if len(fields) not in (5, 6):
        return [f"A cron expression has 5 fields (or 6 with seconds first), not {len(fields)}."]
    try:
        croniter(_croniter_order(expression))
    except (ValueError, KeyError) as exc:
        return [f"Not a valid cron expression: {exc}."]
    return []


def _croniter_order(expression: str) -> str:
    """Our 6-field form puts seconds first (Quartz, Spring); croniter expects them last."""
    fields = expression.split()
    if len(fields) == 6:
        fields = fields[1:] + fields[:1]
    return " ".join(fields)


def schedule_validate(*, schedule: BatchSchedule) -> None:
    errors: dict[str, list[str]] = {}
    zone_problems = timezone_errors(schedule.timezone)
    if zone_problems:
        errors["timezone"] = zone_problems
    if schedule.kind == ScheduleKind.ONCE and schedule.run_at is None:
        errors["run_at"] = ["A once schedule needs the instant to run at."]
    if schedule.kind == ScheduleKind.INTERVAL and not (schedule.interval_every or 0) > 0:
        errors["interval_every"] = ["An interval must be more than 0."]
    if schedule.kind == ScheduleKind.CRON:
        problems = cron_errors(schedule.cron_expression or "")
        if problems:
            errors["cron_expression"] = problems
    if schedule.start_at and schedule.end_at and schedule.end_at <= schedule.start_at:
        errors["end_at"] = ["The end must come after the start."]
    if errors:
        raise DjangoValidationError(errors)
