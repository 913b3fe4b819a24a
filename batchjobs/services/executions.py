"""Creating executions started by hand (through the operator, services/operator.py)."""

from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from batchjobs.batch.registry import batch_job_get, batch_params_errors
from batchjobs.errors import Conflict, InvalidInput
from batchjobs.execution.publish import executions_publish_or_defer
from batchjobs.handlers.registry import handler_get, handler_params_errors
from batchjobs.models import AuditAction, BatchJob, BatchLog, JobKind, OverlapPolicy, Trigger
from batchjobs.models.clock import database_now

from .audit import audit_record
from .permissions import job_handler_permission_check


def execution_params(*, job: BatchJob, params: dict[str, Any] | None) -> dict[str, Any]:
    """The job's default parameters with the run's on top, checked against the schema."""
    if params is not None and not isinstance(params, dict):
        raise InvalidInput({"params": _("Must be a JSON object.")})
    merged = {**job.params, **(params or {})}
    errors = []
    if job.kind == JobKind.HANDLER:
        if handler_get(job.handler_name) is None:
            raise InvalidInput(
                {"handler_name": _("No handler named %(name)s.") % {"name": repr(job.handler_name)}}
            )
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
    """Create and queue one execution of `job`: the operator's building block, not a door of
    its own (the admin, the API and the command line start runs with operator.job_start, which
    applies a batch job's instance rules first). The same idempotency key returns the same
    execution instead of starting another. The operator passes a batch job's instance key,
    and for a restart the execution restarted and the context to resume from."""
    job_handler_permission_check(kind=job.kind, handler_name=job.handler_name, user=user)
    if not job.enabled:
        raise Conflict(
            _("job %(name)s is disabled; enable it before running it") % {"name": repr(job.name)}
        )
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
