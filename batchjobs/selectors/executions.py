"""Executions: lists, one with its attempts and steps, counts by status, recent failures, and
what an operator may do with one."""

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Count, Prefetch, QuerySet
from django.utils.translation import gettext as _

from batchjobs.errors import NotFound
from batchjobs.models import BatchAttempt, BatchLog, ExecutionStatus, StepExecution
from batchjobs.models.execution import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    RESTARTABLE_STATUSES,
    STOPPABLE_STATUSES,
)


def execution_list(
    *,
    queryset: QuerySet[BatchLog] | None = None,
    job_id: int | None = None,
    job_name: str | None = None,
    schedule_id: int | None = None,
    statuses: Iterable[str] = (),
    triggers: Iterable[str] = (),
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    set_aside: bool | None = None,
) -> QuerySet[BatchLog]:
    """Executions, newest first, narrowed by whichever filters are given (None/empty: all)."""
    executions = queryset if queryset is not None else BatchLog.objects.all()
    executions = executions.select_related("job", "created_by")
    if job_id is not None:
        executions = executions.filter(job_id=job_id)
    if job_name:
        executions = executions.filter(job__name=job_name)
    if schedule_id is not None:
        executions = executions.filter(schedule_id=schedule_id)
    statuses, triggers = list(statuses), list(triggers)
    if statuses:
        executions = executions.filter(status__in=statuses)
    if triggers:
        executions = executions.filter(trigger__in=triggers)
    if created_from is not None:
        executions = executions.filter(created_at__gte=created_from)
    if created_to is not None:
        executions = executions.filter(created_at__lt=created_to)
    if set_aside is not None:
        executions = executions.filter(set_aside_at__isnull=not set_aside)
    return executions.order_by("-created_at", "-id")


def execution_get(*, execution_id: int) -> BatchLog:
    """One execution with its attempts and steps."""
    execution = (
        BatchLog.objects.select_related("job", "created_by")
        .prefetch_related(
            Prefetch("attempt_rows", queryset=BatchAttempt.objects.order_by("number")),
            Prefetch("steps", queryset=StepExecution.objects.order_by("pk")),
        )
        .filter(pk=execution_id)
        .first()
    )
    if execution is None:
        raise NotFound(_("no execution %(id)s") % {"id": execution_id})
    return execution


def execution_counts(*, since: datetime | None = None) -> dict[str, int]:
    """Executions by status, every status listed (0 included): all of them, or with `since`
    those waiting or running now whatever their age and those that ended since `since`, by
    when they were created."""
    if since is None:
        groups = [BatchLog.objects.all()]
    else:
        # Naming every final status lets PostgreSQL use the (status, created_at) index.
        groups = [
            BatchLog.objects.filter(status__in=ACTIVE_STATUSES),
            BatchLog.objects.filter(status__in=FINAL_STATUSES, created_at__gte=since),
        ]
    counts = dict.fromkeys(ExecutionStatus.values, 0)
    for rows in groups:
        counts.update(
            rows.order_by().values("status").annotate(n=Count("pk")).values_list("status", "n")
        )
    return counts


def recent_failures(*, limit: int = 10) -> list[BatchLog]:
    return list(
        BatchLog.objects.select_related("job")
        .filter(status=ExecutionStatus.FAILED)
        .order_by("-created_at", "-pk")[:limit]
    )


def error_summary(error: str) -> str:
    """The line of an execution's error that names it: a traceback's last line."""
    lines = (error or "").strip().splitlines()
    return lines[-1] if lines else ""


def execution_operations(*, execution: BatchLog) -> list[str]:
    """The operator's actions that the execution's status allows."""
    operations = []
    if execution.status in STOPPABLE_STATUSES:
        operations.append("stop")
    if execution.status in RESTARTABLE_STATUSES:
        operations += ["restart", "abandon"]
    return operations
