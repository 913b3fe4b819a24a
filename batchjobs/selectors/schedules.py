"""Schedules, and which live ones are due next."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from batchjobs.errors import NotFound
from batchjobs.models import BatchSchedule


def schedule_list() -> QuerySet[BatchSchedule]:
    # The calendars: a schedule's representation names them (one query for a page, not one each).
    return (
        BatchSchedule.objects.select_related("job")
        .prefetch_related("calendars")
        .order_by("job__name", "pk")
    )


def schedule_get(*, schedule_id: int) -> BatchSchedule:
    schedule = schedule_list().filter(pk=schedule_id).first()
    if schedule is None:
        raise NotFound(_("no schedule %(id)s") % {"id": schedule_id})
    return schedule


def upcoming_fires(*, limit: int = 10) -> list[BatchSchedule]:
    """The live schedules (not paused nor set aside, of an enabled job) due next, with their
    job, the soonest first."""
    return list(
        BatchSchedule.objects.select_related("job")
        .filter(
            paused=False, next_fire_at__isnull=False, set_aside_at__isnull=True, job__enabled=True
        )
        .order_by("next_fire_at", "pk")[:limit]
    )


@dataclass(frozen=True)
class NextDue:
    """The live schedule due first, and the job it fires."""

    schedule_id: int
    schedule_kind: str
    job_id: int
    job_name: str
    job_kind: str
    at: datetime


def next_due() -> NextDue | None:
    """The next fire of a live schedule, or None."""
    upcoming = upcoming_fires(limit=1)
    if not upcoming:
        return None
    schedule = upcoming[0]
    assert schedule.next_fire_at is not None  # upcoming_fires lists only scheduled fires
    return NextDue(
        schedule_id=schedule.pk,
        schedule_kind=schedule.kind,
        job_id=schedule.job_id,
        job_name=schedule.job.name,
        job_kind=schedule.job.kind,
        at=schedule.next_fire_at,
    )
