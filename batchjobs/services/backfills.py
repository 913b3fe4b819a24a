"""Backfills: run a schedule's nominal fires over a past range, each at most once (the
schedule's own fire key), paced by a concurrency cap; pause, resume and cancel. The driver that
creates the runs is batchjobs/scheduling/backfill.py.

Decisions:
- A range end in the future is refused: fires to come are beat's.
- A once-schedule may be backfilled: its one fire counts if run_at falls in the range.
- A range holding no fire is refused at creation; a dry run reports it as zero fires.
- Fires are counted exactly on an interval's fixed grid and up to FIRES_COUNTED_EXACTLY
  otherwise; beyond, the total is an estimate (shown "≈"), exact once the backfill completes.
  Over BACKFILL_CONFIRM_FIRES (counted or estimated) the backfill needs `confirm`.
- The schedule's calendars apply as in beat: under "skip" an excluded fire is not run (an
  EXCLUDED occurrence), under "move" it runs (at its moved-to instant if that is still to come).
- Cancel stops creating runs and stops the backfill's runs still QUEUED, through the operator
  door (services/operator.py, audited each); the runs already started finish.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from batchjobs.errors import Conflict, InvalidInput, NotFound
from batchjobs.models import (
    AuditAction,
    Backfill,
    BackfillStatus,
    BatchLog,
    BatchSchedule,
    ExecutionStatus,
)
from batchjobs.models.clock import database_now
from batchjobs.rules.bounds import BACKFILL_CONFIRM_FIRES, MAX_BACKFILL_CONCURRENCY
from batchjobs.scheduling.backfill import backfill_fires_counted, backfill_top_up
from batchjobs.scheduling.calendars import CalendarUnusable, schedules_calendars
from batchjobs.scheduling.fire_times import Timing

from .audit import audit_record
from .executions import execution_params
from .operator import execution_stop
from .permissions import job_handler_permission_check

# Fire times a dry run lists (the total is counted further, to the confirmation bound).
DRY_RUN_LISTED = 1000


@dataclass(frozen=True)
class DryRunFire:
    fire: datetime
    execution_id: int | None  # the fire's execution, when it has one already
    excluded: bool = False  # its day is excluded by a calendar: not run at `fire`
    reason: str = ""  # why it is excluded
    moved_to: datetime | None = None  # UTC: where the calendar policy "move" puts it


@dataclass(frozen=True)
class DryRun:
    fires: list[DryRunFire]  # the first DRY_RUN_LISTED, earliest first
    total: int  # the fires in the range
    estimated: bool  # `total` is an estimate (services docstring)
    needs_confirm: bool  # more than BACKFILL_CONFIRM_FIRES

    @property
    def existing(self) -> int:
        """Of the fires listed, those that have an execution already."""
        return sum(1 for item in self.fires if item.execution_id is not None)

    @property
    def excluded(self) -> int:
        """Of the fires listed, those the schedule's calendars exclude (and do not move)."""
        return sum(1 for item in self.fires if item.excluded and item.moved_to is None)

    @property
    def moved(self) -> int:
        """Of the fires listed, those the schedule's calendars move to another day."""
        return sum(1 for item in self.fires if item.moved_to is not None)


def _schedule(schedule: BatchSchedule | int | str | None) -> BatchSchedule:
    if isinstance(schedule, BatchSchedule):
        return schedule
    found = None
    text = str(schedule)
    # A bigint id: past that, no row has it (and the database would refuse the comparison).
    if isinstance(schedule, int | str) and text.isascii() and text.isdigit() and len(text) < 19:
        found = BatchSchedule.objects.select_related("job").filter(pk=int(text)).first()
    if found is None:
        raise InvalidInput({"schedule": _("No schedule with the id %(id)s.") % {"id": schedule}})
    return found


def _instant(value: Any, *, field: str, zone: ZoneInfo) -> datetime:
    """An aware datetime; a naive one is read in the schedule's zone."""
    if value is None or value == "":
        raise InvalidInput({field: _("This field is required.")})
    if not isinstance(value, datetime):
        raise InvalidInput({field: _("Must be a date and time.")})
    if value.year < 2:  # the fire before it could not be computed
        raise InvalidInput({field: _("Must be a date and time.")})
    return timezone.make_aware(value, zone) if timezone.is_naive(value) else value


def _concurrency(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput({"max_concurrency": _("Must be a whole number.")})
    if not 1 <= value <= MAX_BACKFILL_CONCURRENCY:
        raise InvalidInput(
            {
                "max_concurrency": _("Must be between %(low)s and %(high)s.")
                % {"low": 1, "high": f"{MAX_BACKFILL_CONCURRENCY:,}"}
            }
        )
    return value


def backfill_create(
    *,
    schedule: BatchSchedule | int | str | None,
    range_start: datetime | None,
    range_end: datetime | None,
    max_concurrency: int = 1,
    params: dict[str, Any] | None = None,
    confirm: bool = False,
    dry_run: bool = False,
    user=None,
) -> Backfill | DryRun:
    """Backfill `schedule` over [range_start, range_end] (naive times are read in the
    schedule's zone). A dry run returns the fire times and saves nothing; otherwise the
    backfill is saved and its first runs created, in one transaction, and published once
    committed. Bad input raises InvalidInput naming the field."""
    schedule = _schedule(schedule)
    job = schedule.job
    job_handler_permission_check(kind=job.kind, handler_name=job.handler_name, user=user)
    try:
        zone = ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):  # stored behind validation's back
        raise InvalidInput(
            {"schedule": _("Its time zone is not valid; fix the schedule first.")}
        ) from None
    start = _instant(range_start, field="range_start", zone=zone)
    end = _instant(range_end, field="range_end", zone=zone)
    now = database_now()
    if end > now:
        raise InvalidInput(
            {"range_end": _("Must not be in the future: fires to come are the schedule's own.")}
        )
    if start > end:
        raise InvalidInput({"range_start": _("Must not be after the end of the range.")})
    concurrency = _concurrency(max_concurrency)
    if params is not None and not isinstance(params, dict):
        raise InvalidInput({"params": _("Must be a JSON object.")})
    params = params or {}
    execution_params(job=job, params={**schedule.params, **params})  # checks them by name
    counted = backfill_fires_counted(
        Timing.of(schedule), range_start=start, range_end=end, listed=DRY_RUN_LISTED
    )
    fires, total = counted.listed, counted.total
    needs_confirm = total > BACKFILL_CONFIRM_FIRES
    calendars = schedules_calendars(
        [(schedule.pk, schedule.timezone, schedule.calendar_policy)]
    ).get(schedule.pk)
    try:  # the fires listed, judged as the driver will (an unusable calendar fails here)
        verdicts = [calendars.verdict(fire) if calendars else None for fire in fires]
    except CalendarUnusable as exc:
        raise InvalidInput({"schedule": str(exc)}) from None
    if dry_run:
        executions = dict(
            BatchLog.objects.filter(schedule=schedule, scheduled_for__in=fires).values_list(
                "scheduled_for", "pk"
            )
        )
        return DryRun(
            fires=[
                DryRunFire(fire, executions.get(fire))
                if verdict is None or verdict.allowed
                else DryRunFire(
                    fire, executions.get(fire), True, verdict.reason, verdict.moved_to
                )  # fmt: skip
                for fire, verdict in zip(fires, verdicts, strict=True)
            ],
            total=total,
            estimated=counted.estimated,
            needs_confirm=needs_confirm,
        )
    if not total:
        raise InvalidInput({"range_start": _("No fire of this schedule falls in this range.")})
    if needs_confirm and not confirm:
        raise InvalidInput(
            {
                "confirm": _(
                    "The range holds more than %(count)s fires; confirm to backfill them all."
                )
                % {"count": f"{BACKFILL_CONFIRM_FIRES:,}"}
            }
        )
    if not job.enabled:
        raise InvalidInput(
            {"schedule": _("Its job %(name)s is disabled; enable it first.") % {"name": job.name}}
        )
    with transaction.atomic():
        backfill = Backfill.objects.create(
            schedule=schedule,
            range_start=start,
            range_end=end,
            max_concurrency=concurrency,
            params=params,
            fires_total=total,
            created_by=user if user is not None and user.is_authenticated else None,
        )
        audit_record(
            action=AuditAction.CREATED,
            obj=backfill,
            user=user,
            changes={
                "range": [None, [start.isoformat(), end.isoformat()]],
                "max_concurrency": [None, concurrency],
                "fires_total": [None, total],
            },
        )
        backfill_top_up(backfill_id=backfill.pk)
    backfill.refresh_from_db()
    return backfill


def _locked(backfill_id: int) -> Backfill:
    """The backfill's row, locked until the transaction ends (the driver holds it too)."""
    backfill = (
        Backfill.objects.select_for_update(of=("self",))
        .select_related("schedule")
        .filter(pk=backfill_id)
        .first()
    )
    if backfill is None:
        raise NotFound(_("no backfill %(id)s") % {"id": backfill_id})
    return backfill


def _set_status(
    backfill: Backfill, status: BackfillStatus, *, action: AuditAction, user, now: datetime
) -> None:
    was = backfill.status
    backfill.status = status
    if status == BackfillStatus.CANCELLED:
        backfill.finished_at = now
    backfill.save(update_fields=["status", "finished_at"])
    audit_record(action=action, obj=backfill, user=user, changes={"status": [was, status]})


def _refuse(backfill: Backfill, message: str) -> Conflict:
    """`message` with %(id)s and %(status)s: the backfill's state, which refuses the change."""
    return Conflict(message % {"id": backfill.pk, "status": backfill.get_status_display()})


def backfill_pause(*, backfill_id: int, user=None) -> Backfill:
    """Create no more runs until resumed; the runs created go on."""
    with transaction.atomic():
        backfill = _locked(backfill_id)
        if backfill.status != BackfillStatus.RUNNING:
            raise _refuse(
                backfill, _("backfill %(id)s is %(status)s: only a running one can be paused")
            )
        _set_status(backfill, BackfillStatus.PAUSED, action=AuditAction.PAUSED, user=user,
                    now=database_now())  # fmt: skip
    return backfill


def backfill_resume(*, backfill_id: int, user=None) -> Backfill:
    """Go on from the cursor, topping the runs up to the cap at once."""
    with transaction.atomic():
        backfill = _locked(backfill_id)
        if backfill.status != BackfillStatus.PAUSED:
            raise _refuse(
                backfill, _("backfill %(id)s is %(status)s: only a paused one can be resumed")
            )
        _set_status(backfill, BackfillStatus.RUNNING, action=AuditAction.RESUMED, user=user,
                    now=database_now())  # fmt: skip
        backfill_top_up(backfill_id=backfill.pk)
    backfill.refresh_from_db()
    return backfill


def backfill_cancel(*, backfill_id: int, user=None) -> Backfill:
    """Create no more runs, for good, and stop the backfill's runs still QUEUED (each through
    the operator's stop, audited); runs already started finish."""
    with transaction.atomic():
        backfill = _locked(backfill_id)
        if backfill.status not in (BackfillStatus.RUNNING, BackfillStatus.PAUSED):
            raise _refuse(backfill, _("backfill %(id)s is %(status)s: it has ended already"))
        _set_status(backfill, BackfillStatus.CANCELLED, action=AuditAction.STOPPED, user=user,
                    now=database_now())  # fmt: skip
        queued = backfill.executions.filter(status=ExecutionStatus.QUEUED)
        for execution_id in queued.values_list("pk", flat=True):
            try:
                execution_stop(execution_id=execution_id, user=user)
            except Conflict:  # it ended meanwhile: nothing to stop
                pass
    return backfill
