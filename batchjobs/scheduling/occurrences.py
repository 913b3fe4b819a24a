"""The account of a schedule's nominal fires: one ScheduleOccurrence per fire (or per run of
consecutive fires with one fate), written by whoever decides the fire's fate — beat, a resume
after a pause, a backfill — through occurrences_record, so the key (schedule, scheduled_for)
keeps each fire in the account once."""

from dataclasses import dataclass
from datetime import datetime

from batchjobs.models import OccurrenceOutcome, ScheduleOccurrence

# The fields a later, better-informed writer may change on an existing row (a backfill that
# runs a fire beat had recorded missed).
_OVERWRITTEN = ("outcome", "reason", "execution", "due_at", "recorded_at")


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


def occurrences_record(
    occurrences: list[Occurrence], *, now: datetime, overwrite: bool = False
) -> None:
    """Record what became of these fires. A fire already in the account keeps its row unless
    `overwrite`, which replaces the row's outcome, reason, execution and due time."""
    if not occurrences:
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
