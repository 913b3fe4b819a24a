"""Writes to schedules, their preview and description. schedule_validate is run by
schedule_save and by the admin's forms (services/validation.py), so the same rules guard every
way in."""

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cron_descriptor import Options, get_description
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from batchjobs.errors import InvalidInput
from batchjobs.models import AuditAction, BatchJob, BatchSchedule, Calendar, ScheduleKind
from batchjobs.models.clock import database_now
from batchjobs.rules.bounds import MAX_DELAY_SECONDS, interval_every_error
from batchjobs.rules.cron import cron_errors
from batchjobs.rules.zone import timezone_errors
from batchjobs.scheduling.fire_times import schedule_next_fire
from batchjobs.scheduling.occurrences import occurrences_of_pause, occurrences_record
from batchjobs.scheduling.preview import PreviewFire, fires_preview
from batchjobs.scheduling.wakeup import schedules_changed_notify

from .audit import audit_changes, audit_record, audit_snapshot, audit_stored
from .calendars import schedule_calendars_set
from .permissions import job_handler_permission_check
from .validation import instance_validate

# A once-schedule this little in the past is "now", not "in the past" (a form's round trip).
ONCE_PAST_TOLERANCE = timedelta(seconds=5)
TIMING_FIELDS = (
    "kind", "run_at", "interval_every", "interval_unit", "cron_expression", "timezone",
    "start_at", "end_at", "dst_gap_policy", "dst_fold_policy", "jitter_seconds",
)  # fmt: skip
SCHEDULE_FIELDS = {
    field.name
    for field in BatchSchedule._meta.get_fields()
    if field.concrete
    and not field.auto_created
    and field.name
    not in {
        "created_at", "updated_at", "next_fire_at", "last_fire_at", "run_count",
        # kept by beat and by pause and resume
        "previous_fire_at", "paused_at",
        # set by schedule_create's delay_seconds, cleared by a new run_at
        "delay_seconds",
    }
}  # fmt: skip


# The describer's own catalogue for each language of the console (it would take the machine's
# locale otherwise).
CRON_DESCRIPTION_LOCALES = {"en": "en_US", "ko": "ko_KR"}


def cron_describe(expression: str) -> str:
    """'*/15 * * * *' -> 'Every 15 minutes' ('매 15분마다' in Korean), in the active language;
    empty for an invalid expression."""
    if cron_errors(expression):
        return ""
    language = (get_language() or "en").split("-")[0]
    options = Options(locale_code=CRON_DESCRIPTION_LOCALES.get(language, "en_US"))
    try:
        return get_description(expression, options)
    except Exception:  # the describer is stricter than croniter on a few exotic forms
        return ""


def _timing_errors(schedule: BatchSchedule) -> dict[str, list[str]]:
    """What makes the schedule's fire times impossible to work out, by field."""
    errors: dict[str, list[str]] = {}
    zone_problems = timezone_errors(schedule.timezone)
    if zone_problems:
        errors["timezone"] = zone_problems
    if schedule.kind == ScheduleKind.ONCE and schedule.run_at is None:
        errors["run_at"] = [_("A once schedule needs the instant to run at.")]
    if schedule.kind == ScheduleKind.INTERVAL:
        problem = interval_every_error(schedule.interval_every, schedule.interval_unit)
        if problem:
            errors["interval_every"] = [problem]
    if schedule.kind == ScheduleKind.CRON:
        problems = cron_errors(schedule.cron_expression or "")
        if problems:
            errors["cron_expression"] = problems
    return errors


def schedule_validate(*, schedule: BatchSchedule) -> None:
    errors = _timing_errors(schedule)
    if schedule.start_at and schedule.end_at and schedule.end_at <= schedule.start_at:
        errors["end_at"] = [_("The end must come after the start.")]
    if schedule.params is not None and not isinstance(schedule.params, dict):
        errors["params"] = [_("Must be a JSON object.")]
    if _once_in_the_past(schedule, now=database_now()):
        errors["run_at"] = [_("This time is in the past; choose a time to come, or run it now.")]
    if errors:
        raise DjangoValidationError(errors)


def schedule_save(
    *,
    schedule: BatchSchedule,
    run_now_if_past: bool = False,
    now: datetime | None = None,
    user=None,
) -> BatchSchedule:
    """Validate and save; when the timing changed (or the schedule is new), compute the next
    fire from now. Every beat hears of the change once this commits."""
    # A schedule starts its job (with parameters of its own): what starting it takes.
    if schedule.job_id is not None:
        job = schedule.job
        job_handler_permission_check(kind=job.kind, handler_name=job.handler_name, user=user)
    now = now or database_now()
    before = audit_stored(schedule)
    if run_now_if_past and _once_in_the_past(schedule, now=now):
        schedule.run_at = now
    if schedule.kind == ScheduleKind.INTERVAL and schedule.start_at is None:
        schedule.start_at = now  # the grid is anchored at creation: no drift, ever
    instance_validate(schedule, validate=lambda: schedule_validate(schedule=schedule))
    with transaction.atomic():
        # Saving a schedule beat set aside (firing it raised) is how an operator puts it back:
        # its next fire is computed again, from now, as for a changed timing.
        set_aside = schedule.set_aside_at is not None
        schedule.set_aside_at, schedule.set_aside_reason = None, ""
        _pause_change(schedule, now=now)
        if set_aside or _timing_changed(schedule):
            # The fire before the next is no longer known: beat looks it up.
            schedule.previous_fire_at = None
            if schedule.pk is None:
                schedule.save()  # the id seeds the jitter
            # A fire exactly now counts: "immediately" and a new interval's first fire.
            schedule.next_fire_at = schedule_next_fire(
                schedule=schedule,
                after=min(now, schedule.run_at or now) - timedelta(microseconds=1),
            )
        schedule.save()
        changes = audit_changes(before, audit_snapshot(schedule))
        if changes:
            action = AuditAction.CREATED if before is None else AuditAction.CHANGED
            audit_record(action=action, obj=schedule, user=user, changes=changes)
        schedules_changed_notify()
    return schedule


def _once_in_the_past(schedule: BatchSchedule, *, now: datetime) -> bool:
    """A once-schedule given a time that has passed: refused, never silently dropped. Only a
    new or changed time counts: a once-schedule that already fired stays editable."""
    return (
        schedule.kind == ScheduleKind.ONCE
        and schedule.run_at is not None
        and schedule.run_at < now - ONCE_PAST_TOLERANCE
        and _timing_changed(schedule)
    )


def _timing_changed(schedule: BatchSchedule) -> bool:
    if schedule.pk is None:
        return True
    stored = BatchSchedule.objects.filter(pk=schedule.pk).values(*TIMING_FIELDS, "max_runs").first()
    if stored is None:
        return True
    return any(stored[name] != getattr(schedule, name) for name in (*TIMING_FIELDS, "max_runs"))


def _assign(schedule: BatchSchedule, fields: dict[str, Any]) -> None:
    unknown = set(fields) - SCHEDULE_FIELDS
    if unknown:
        raise InvalidInput({name: _("Unknown field.") for name in sorted(unknown)})
    for name, value in fields.items():
        setattr(schedule, name, value)


def schedule_create(
    *,
    job: BatchJob,
    delay_seconds: float | None = None,
    run_now_if_past: bool = False,
    calendars: list[Calendar] | None = None,
    user=None,
    **fields: Any,
) -> BatchSchedule:
    """Create a schedule. A once-schedule runs at `run_at`, or `delay_seconds` from now
    (0: immediately). `calendars`: the exclusion calendars attached (none if left out)."""
    schedule = BatchSchedule(job=job)
    _assign(schedule, fields)
    now = database_now()
    if delay_seconds is not None:
        schedule_run_after_delay(schedule=schedule, delay_seconds=delay_seconds, now=now)
    with transaction.atomic():  # the schedule and its calendars, or neither
        schedule_save(schedule=schedule, run_now_if_past=run_now_if_past, now=now, user=user)
        if calendars:
            schedule_calendars_set(schedule=schedule, calendars=calendars, user=user)
    return schedule


def schedule_run_after_delay(
    *, schedule: BatchSchedule, delay_seconds: float, now: datetime | None = None
) -> None:
    """Make `schedule` (not saved here) a once-schedule firing `delay_seconds` from `now`
    (0: immediately). A delay out of bounds is refused naming delay_seconds."""
    if (
        isinstance(delay_seconds, bool)
        or not isinstance(delay_seconds, int | float)
        or not 0 <= delay_seconds <= MAX_DELAY_SECONDS  # NaN compares false: refused too
    ):
        raise InvalidInput(
            {
                "delay_seconds": _("Must be a number of seconds from 0 to %(max)s.")
                % {"max": MAX_DELAY_SECONDS}
            }
        )
    schedule.kind = ScheduleKind.ONCE
    schedule.run_at = (now or database_now()) + timedelta(seconds=delay_seconds)
    schedule.delay_seconds = delay_seconds


def schedule_update(
    *,
    schedule: BatchSchedule,
    run_now_if_past: bool = False,
    calendars: list[Calendar] | None = None,
    user=None,
    **fields: Any,
) -> BatchSchedule:
    """Change a schedule; `calendars`, when given, replaces its exclusion calendars."""
    _assign(schedule, fields)
    if "run_at" in fields:  # now given as a date and time
        schedule.delay_seconds = None
    with transaction.atomic():
        schedule_save(schedule=schedule, run_now_if_past=run_now_if_past, user=user)
        if calendars is not None:
            schedule_calendars_set(schedule=schedule, calendars=calendars, user=user)
    return schedule


def _pause_change(schedule: BatchSchedule, *, now: datetime) -> None:
    """Apply a change of `paused` about to be saved: a pause keeps its time; a resume records
    the fires it passed by as PAUSED and moves the schedule past them, so they are not taken
    for misfires. Inside the saving transaction, with the schedule's row locked."""
    stored = (
        BatchSchedule.objects.select_for_update().filter(pk=schedule.pk).first()
        if schedule.pk is not None
        else None
    )
    was_paused = stored.paused if stored is not None else False
    if schedule.paused == was_paused:
        return
    if schedule.paused:
        schedule.paused_at = now
        return
    if stored is None:  # not reached: a new schedule is never "was paused"
        return
    occurrences, last = occurrences_of_pause(schedule=stored, now=now)
    occurrences_record(occurrences, now=now)
    schedule.paused_at = None
    if last is not None:
        schedule.previous_fire_at = last
        schedule.next_fire_at = schedule_next_fire(schedule=stored, after=now)


def _schedule_set_paused(
    *, schedule: BatchSchedule, paused: bool, user, now: datetime | None
) -> BatchSchedule:
    with transaction.atomic():
        stored = BatchSchedule.objects.select_for_update().filter(pk=schedule.pk).first()
        if stored is not None and stored.paused != paused:
            stored.paused = paused
            _pause_change(stored, now=now or database_now())
            stored.save(update_fields=["paused", "paused_at", "previous_fire_at", "next_fire_at"])
            action = AuditAction.PAUSED if paused else AuditAction.RESUMED
            audit_record(action=action, obj=schedule, user=user,
                         changes={"paused": [not paused, paused]})  # fmt: skip
            for name in ("paused_at", "previous_fire_at", "next_fire_at"):
                setattr(schedule, name, getattr(stored, name))
        schedules_changed_notify()
    schedule.paused = paused
    return schedule


def schedule_pause(
    *, schedule: BatchSchedule, user=None, now: datetime | None = None
) -> BatchSchedule:
    return _schedule_set_paused(schedule=schedule, paused=True, user=user, now=now)


def schedule_resume(
    *, schedule: BatchSchedule, user=None, now: datetime | None = None
) -> BatchSchedule:
    """Resume from now: the fires that fell due while paused are recorded PAUSED (occurrence
    records), not run, and the schedule goes on with its next fire after now."""
    return _schedule_set_paused(schedule=schedule, paused=False, user=user, now=now)


def schedule_delete(*, schedule: BatchSchedule, user=None) -> None:
    with transaction.atomic():
        audit_record(action=AuditAction.DELETED, obj=schedule, user=user)
        schedule.delete()
        schedules_changed_notify()


def schedule_draft_preview(*, schedule: BatchSchedule, count: int = 10) -> list[PreviewFire]:
    """The next fires of a schedule as typed, before it is saved (the console's live preview),
    counted as schedule_save would: a new interval's grid anchored now, a fire now included.
    Refused naming the field, as the save would refuse it."""
    now = database_now()
    if schedule.kind == ScheduleKind.INTERVAL and schedule.start_at is None:
        schedule.start_at = now
    return schedule_preview(schedule=schedule, count=count, after=now - timedelta(microseconds=1))


def schedule_describe(schedule: BatchSchedule) -> str:
    """A schedule's timing in words, in the active language: "At 02:00 AM", "every 5 minutes",
    "once at 2027-01-04 09:00:00 KST"."""
    if schedule.kind == ScheduleKind.CRON:
        return cron_describe(schedule.cron_expression)
    if schedule.kind == ScheduleKind.ONCE and schedule.run_at is not None:
        zone_name = "UTC" if timezone_errors(schedule.timezone) else schedule.timezone
        local = schedule.run_at.astimezone(ZoneInfo(zone_name))
        return _("once at %(when)s") % {"when": f"{local:%Y-%m-%d %H:%M:%S %Z}"}
    return schedule.summary


def schedule_preview(
    *, schedule: BatchSchedule, count: int = 10, after: datetime | None = None
) -> list[PreviewFire]:
    """The next `count` fire times (with jitter), marking where a DST transition falls. A
    schedule stored behind validation's back with a timing that cannot be worked out is
    refused naming the field."""
    if not 1 <= count <= 1000:
        raise InvalidInput({"count": _("Must be between 1 and 1000.")})
    errors = _timing_errors(schedule)
    if errors:
        raise InvalidInput(errors)
    return fires_preview(schedule=schedule, count=count, after=after or database_now())
