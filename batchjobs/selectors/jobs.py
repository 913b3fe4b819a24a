"""Jobs as the API, the command line and an export read them."""

from collections.abc import Iterable

from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery
from django.utils.translation import gettext as _

from batchjobs.errors import NotFound
from batchjobs.models import BatchJob, BatchLog, BatchSchedule


def job_list() -> QuerySet[BatchJob]:
    """Jobs with their schedule count and their latest execution (id, status, created_at)."""
    latest = BatchLog.objects.filter(job=OuterRef("pk")).order_by("-created_at", "-id")
    schedules = (
        BatchSchedule.objects.filter(job=OuterRef("pk"))
        .order_by()
        .values("job")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return (
        BatchJob.objects.select_related("created_by")
        .prefetch_related("tags")
        .annotate(
            schedule_count=Subquery(schedules[:1]),
            latest_execution_id=Subquery(latest.values("pk")[:1]),
            latest_execution_status=Subquery(latest.values("status")[:1]),
            latest_execution_created_at=Subquery(latest.values("created_at")[:1]),
        )
        .order_by("name")
    )


def job_get(*, job_id: int) -> BatchJob:
    job = job_list().filter(pk=job_id).first()
    if job is None:
        raise NotFound(_("no job %(id)s") % {"id": job_id})
    return job


def jobs_with_schedules(*, names: Iterable[str] | None = None) -> QuerySet[BatchJob]:
    """Jobs (all, or those named) with their schedules in creation order: what an export holds."""
    jobs = BatchJob.objects.prefetch_related(
        "tags",
        Prefetch(
            "schedules", queryset=BatchSchedule.objects.order_by("pk").prefetch_related("calendars")
        ),
    ).order_by("name")
    if names is not None:
        jobs = jobs.filter(name__in=list(names))
    return jobs
