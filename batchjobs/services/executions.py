"""Starting executions by hand, relaying their messages, and purging old ones."""

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from batchjobs.batch.registry import batch_job_get, batch_params_errors
from batchjobs.errors import Conflict, InvalidInput
from batchjobs.execution.lifecycle import (
    executions_due_for_publish,
    executions_set_aside_unsent,
    executions_unclaimed_queues,
    relay_cutoff,
)
from batchjobs.execution.publish import (
    broker_holdings,
    executions_publish,
    executions_publish_or_defer,
)
from batchjobs.handlers.registry import handler_get, handler_params_errors
from batchjobs.models import AuditAction, BatchJob, BatchLog, JobKind, OverlapPolicy, Trigger
from batchjobs.models.clock import database_now
from batchjobs.models.execution import FINAL_STATUSES
from batchjobs.models.set_aside import DATABASE_OUTAGES, set_aside_reason

from .audit import audit_record
from .permissions import job_handler_permission_check

logger = logging.getLogger(__name__)


def execution_params(*, job: BatchJob, params: dict[str, Any] | None) -> dict[str, Any]:
    """The job's default parameters with the run's on top, checked against the schema."""
    if params is not None and not isinstance(params, dict):
        raise InvalidInput({"params": "Must be a JSON object."})
    merged = {**job.params, **(params or {})}
    errors = []
    if job.kind == JobKind.HANDLER:
        if handler_get(job.handler_name) is None:
            raise InvalidInput({"handler_name": f"No handler named {job.handler_name!r}."})
        errors = handler_params_errors(job.handler_name, merged)
    elif job.kind == JobKind.BATCH and batch_job_get(job.batch_job_name):
        errors = batch_params_errors(job.batch_job_name, merged)
    if errors:
        raise InvalidInput({"params": errors})
    return merged


def execution_start(
    *,
    job: BatchJob,
    trigger: Trigger,
    params: dict[str, Any] | None = None,
    user=None,
    idempotency_key: str = "",
    instance_key: str = "",
    restart_of: BatchLog | None = None,
    execution_context: dict | None = None,
) -> BatchLog:
    """Queue a run of `job` now ("run now"). The same idempotency key returns the same
    execution instead of starting another. The JobOperator passes a batch job's instance key,
    and for a restart the execution restarted and the context to resume from."""
    job_handler_permission_check(kind=job.kind, handler_name=job.handler_name, user=user)
    if not job.enabled:
        raise Conflict(f"job {job.name!r} is disabled; enable it before running it")
    merged = execution_params(job=job, params=params)
    if idempotency_key:
        existing = BatchLog.objects.filter(job=job, idempotency_key=idempotency_key).first()
        if existing:
            return existing
    now = database_now()
    try:
        with transaction.atomic():
            execution = BatchLog.objects.create(
                job=job,
                trigger=trigger,
                params=merged,
                exclusive=job.overlap_policy != OverlapPolicy.ALLOW,
                max_attempts=job.max_attempts,
                next_attempt_at=now,
                published_at=now,
                created_by=user if user and user.is_authenticated else None,
                idempotency_key=idempotency_key,
                instance_key=instance_key,
                restart_of=restart_of,
                execution_context=execution_context or {},
            )
            audit_record(
                action=AuditAction.RESTARTED if restart_of else AuditAction.STARTED,
                obj=execution,
                user=user,
                actor="cli" if trigger == Trigger.CLI else "system",
                changes={"params": [None, merged]}
                | ({"restart_of": [None, restart_of.pk]} if restart_of else {}),
            )
            transaction.on_commit(lambda: executions_publish_or_defer([execution.pk]))
    except IntegrityError:
        if idempotency_key:  # a concurrent start with the same key won
            return BatchLog.objects.get(job=job, idempotency_key=idempotency_key)
        raise
    return execution


def executions_relay() -> int:
    """Send the messages that are due: retries after their backoff, runs an overlap held back,
    and runs whose message is lost (DESIGN.md §4, invariant 4): unclaimed after the relay
    delay, and no longer held by the broker, in a queue or by a worker (Redis restarted empty,
    a message deleted), however long the queue. The broker is read first: a message a worker
    takes meanwhile is claimed before the rows are read, so it is not mistaken for lost.

    They go ahead of the backlog, each being overdue. An execution whose route Celery or Redis
    refuses is set aside, and the others are sent in the same pass; a broker outage fails the
    pass, and the next one sends them. Returns how many were sent."""
    # One cutoff for the pass: whatever it counts as stale was sent before the broker is read.
    sent_before = relay_cutoff()
    held = broker_holdings(
        queues=executions_unclaimed_queues(sent_before=sent_before),
        taken_within_seconds=settings.BATCHJOBS_RELAY_AFTER_SECONDS,
    )
    due = executions_due_for_publish(
        backlogged_queues=held.unread_queues,
        held_by_broker=held.execution_ids,
        sent_before=sent_before,
    )
    if not due:
        return 0
    refused = executions_publish(due, ahead_of_backlog=True)
    if refused:
        logger.warning("relay: setting aside %d executions it cannot send", len(refused))
        executions_set_aside_unsent(errors=refused)
    return len(due) - len(refused)


def execution_purge_finished(
    *, older_than: timedelta, batch_size: int = 1000, jobs: Q | None = None
) -> int:
    """Delete finished executions (with their attempts and steps) created before
    now - older_than, of the `jobs` matched (all by default), a batch per transaction, so that
    no lock is held for long. An execution the database will not delete (a table of another
    application still refers to it, say) is set aside with the error, and the others go; it
    is left alone from then on. Returns how many were deleted."""
    now = database_now()
    try:
        cutoff = now - older_than
    except OverflowError:  # kept for longer than the calendar goes back: nothing has expired
        return 0
    expired = BatchLog.objects.filter(
        created_at__lt=cutoff, status__in=FINAL_STATUSES, set_aside_at__isnull=True
    )
    if jobs is not None:
        expired = expired.filter(jobs)
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
        try:
            with transaction.atomic():
                deleted += _delete_executions(batch)
        except DATABASE_OUTAGES:
            raise
        except Exception:  # one row's refusal fails its whole batch: delete them one by one
            deleted += _purge_each(batch, now=now)


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
        jobs=Q(job__retention_days__isnull=True),
    )
    periods = (
        BatchJob.objects.filter(retention_days__isnull=False)
        .order_by()
        .values_list("retention_days", flat=True)
        .distinct()
    )
    for days in periods:
        try:
            older_than = timedelta(days=days)
        except OverflowError:  # longer than a timedelta holds: nothing of these jobs expires
            continue
        deleted += execution_purge_finished(
            older_than=older_than, batch_size=batch_size, jobs=Q(job__retention_days=days)
        )
    return deleted
