"""Creating executions started by hand (through the operator, services/operator.py)."""

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from batchjobs.batch.registry import batch_job_get, batch_params_errors
from batchjobs.errors import Conflict, InvalidInput
from batchjobs.execution.fire_time import FireTime
from batchjobs.execution.publish import executions_publish_or_defer
from batchjobs.handlers.registry import handler_get, handler_params_errors
from batchjobs.models import (
    AuditAction,
    BatchJob,
    BatchLog,
    BatchSchedule,
    JobKind,
    OverlapPolicy,
    ScheduleKind,
    Trigger,
)
from batchjobs.models.clock import database_now
from batchjobs.scheduling.fire_times import Timing, previous_fire_before

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


def logical_time_checked(value: Any) -> datetime | None:
    """A caller's logical time: an aware date and time, or None (the start time)."""
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput(
            {"logical_time": _("Enter a date and time with its UTC offset (ISO 8601).")}
        )
    return value


def execution_fire_time(*, job: BatchJob, logical_time: datetime) -> FireTime:
    """The fire time of a run started by hand for `logical_time`: its data interval runs from
    the latest nominal fire of the job's recurring schedules before it (what the last
    scheduled run covered up to), or is empty when the job has none. A start for a past fire
    time thus covers the same period as that fire's own run."""
    previous = [
        fire
        for schedule in BatchSchedule.objects.filter(job=job).exclude(kind=ScheduleKind.ONCE)
        if (fire := previous_fire_before(Timing.of(schedule), logical_time)) is not None
    ]
    return FireTime(
        logical_time=logical_time,
        data_interval_start=max(previous, default=logical_time),
        data_interval_end=logical_time,
    )


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
    fire_time: FireTime | None = None,
) -> BatchLog:
    """Create and queue one execution of `job`: the operator's building block, not a door of
    its own (the admin, the API and the command line start runs with operator.job_start, which
    applies a batch job's instance rules first). The same idempotency key returns the same
    execution instead of starting another. The operator passes a batch job's instance key,
    and for a restart the execution restarted and the context to resume from. `fire_time`:
    the period the run stands for (execution_fire_time); by default its start time's."""
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
    fire_time = fire_time or execution_fire_time(job=job, logical_time=now)
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
                logical_time=fire_time.logical_time,
                data_interval_start=fire_time.data_interval_start,
                data_interval_end=fire_time.data_interval_end,
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
