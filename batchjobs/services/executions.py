"""Starting executions by hand, and relaying their messages."""

import logging
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

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
