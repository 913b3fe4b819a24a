"""Retention: deleting finished executions once their job keeps them no longer, by the
housekeeping task, or by a job of the built-in `purge_logs` handler defined here (handlers sit
below execution, so it cannot live with the others in batchjobs/handlers/builtin.py; apps.py
imports this module when the app starts, which registers it)."""

import logging
from datetime import datetime, timedelta
from typing import cast

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from batchjobs.handlers.registry import HandlerContext, handler
from batchjobs.models import BatchJob, BatchLog, ScheduleOccurrence
from batchjobs.models.clock import database_now
from batchjobs.models.execution import FINAL_STATUSES
from batchjobs.models.set_aside import DATABASE_OUTAGES, set_aside_reason

from .attempt_log import attempt_log_purge

logger = logging.getLogger(__name__)


def execution_purge_finished(
    *, older_than: timedelta, batch_size: int = 1000, jobs: Q | None = None
) -> int:
    """Delete finished executions (with their attempts and steps) created before
    now - older_than, of the `jobs` matched (a filter on BatchJob; all by default), a batch
    per transaction, so that no lock is held for long; and the occurrence records of those
    jobs' schedules recorded before then. An execution the database will not delete (a table
    of another application still refers to it, say) is set aside with the error, and the
    others go; it is left alone from then on. Returns how many executions were deleted."""
    now = database_now()
    try:
        cutoff = now - older_than
    except OverflowError:  # kept for longer than the calendar goes back: nothing has expired
        return 0
    _purge_occurrences(cutoff=cutoff, batch_size=batch_size, jobs=jobs)
    expired = BatchLog.objects.filter(
        created_at__lt=cutoff, status__in=FINAL_STATUSES, set_aside_at__isnull=True
    )
    if jobs is not None:
        expired = expired.filter(job__in=BatchJob.objects.filter(jobs))
    deleted, after = 0, 0
    while True:
        # In id order from where the last batch ended: a row that outlives its batch (whatever
        # kept it) is not read again in this pass.
        batch = list(
            expired.filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)[:batch_size]
        )
        if not batch:
            return deleted
        after = batch[-1]
        attempt_log_purge(execution_ids=batch)
        try:
            with transaction.atomic():
                deleted += _delete_executions(batch)
        except DATABASE_OUTAGES:
            raise
        except Exception:  # one row's refusal fails its whole batch: delete them one by one
            deleted += _purge_each(batch, now=now)


def _purge_occurrences(*, cutoff: datetime, batch_size: int, jobs: Q | None) -> None:
    """Occurrence records go with the executions' retention: a batch per transaction. They
    refer to nothing that could refuse their deletion."""
    expired = ScheduleOccurrence.objects.filter(recorded_at__lt=cutoff)
    if jobs is not None:
        expired = expired.filter(schedule__job__in=BatchJob.objects.filter(jobs))
    while True:
        batch = list(expired.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not batch:
            return
        with transaction.atomic():
            ScheduleOccurrence.objects.filter(pk__in=batch).delete()


def _delete_executions(ids: list[int]) -> int:
    _, counts = BatchLog.objects.filter(pk__in=ids).delete()
    return counts.get(BatchLog._meta.label, 0)


def _purge_each(ids: list[int], *, now: datetime) -> int:
    deleted = 0
    for pk in ids:
        try:
            with transaction.atomic():
                deleted += _delete_executions([pk])
        except DATABASE_OUTAGES:
            raise
        except Exception as error:
            logger.error("execution %s set aside: purging it raised", pk, exc_info=error)
            BatchLog.objects.filter(pk=pk).update(
                set_aside_at=now, set_aside_reason=set_aside_reason(error)
            )
    return deleted


def executions_purge_expired(*, batch_size: int = 1000) -> int:
    """Housekeeping: purge what each job keeps no longer, by its retention_days or else
    BATCHJOBS_RETENTION_DAYS. Returns how many executions were deleted."""
    deleted = execution_purge_finished(
        older_than=timedelta(days=settings.BATCHJOBS_RETENTION_DAYS),
        batch_size=batch_size,
        jobs=Q(retention_days__isnull=True),
    )
    periods = (
        BatchJob.objects.filter(retention_days__isnull=False)
        .order_by()
        .values_list("retention_days", flat=True)
        .distinct()
    )
    for days in periods:
        try:
            older_than = timedelta(days=cast(int, days))  # filtered: never None
        except OverflowError:  # longer than a timedelta holds: nothing of these jobs expires
            continue
        deleted += execution_purge_finished(
            older_than=older_than, batch_size=batch_size, jobs=Q(retention_days=days)
        )
    return deleted


@handler(
    "purge_logs",
    schema={
        "type": "object",
        "properties": {
            "older_than_days": {"type": "number", "exclusiveMinimum": 0},
            "batch_size": {"type": "integer", "minimum": 1, "maximum": 100000},
        },
        "required": ["older_than_days"],
        "additionalProperties": False,
    },
    description=_(
        "Delete finished executions (and their attempts and steps) older than the given age."
    ),
)
def purge_logs(ctx: HandlerContext, *, older_than_days: float, batch_size: int = 1000) -> dict:
    """Delete finished executions (and their attempts and steps) older than the given age."""
    deleted = execution_purge_finished(
        older_than=timedelta(days=older_than_days), batch_size=batch_size
    )
    return {"deleted": deleted}
