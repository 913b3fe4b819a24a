"""The JobOperator (after Spring Batch's): start, stop, restart and abandon executions of every
kind of job, and read their summaries. The one door for these operations: the admin, the API
and the command line all come through here (the status changes themselves are made by
batchjobs.execution.lifecycle)."""

import hashlib
import json
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from batchjobs.batch.registry import batch_job_get, batch_job_names
from batchjobs.batch.repository import COUNTERS
from batchjobs.errors import Conflict, InvalidInput, NotFound
from batchjobs.execution.lifecycle import (
    execution_partitions_carry,
    execution_restart_prepare,
    execution_set_abandoned,
    execution_stop_request,
)
from batchjobs.models import (
    AuditAction,
    BatchJob,
    BatchLog,
    ExecutionStatus,
    JobKind,
    StepExecution,
    Trigger,
)
from batchjobs.models.execution import ACTIVE_STATUSES, RESTARTABLE_STATUSES

from .audit import audit_record
from .executions import (
    FireTime,
    execution_fire_time,
    execution_params,
    execution_start,
    logical_time_checked,
)
from .jobs import job_create

# The parameter Spring's RunIdIncrementer steps: identifying whatever names a job declares, as
# in Spring, so that stepping it always makes a new job instance.
RUN_ID = "run.id"


def job_names() -> list[str]:
    """The registered batch jobs."""
    return batch_job_names()


def _job(job_name: str, *, user=None) -> BatchJob:
    job = BatchJob.objects.filter(name=job_name).first()
    if job is not None:
        return job
    if batch_job_get(job_name) is None:
        raise NotFound(_("no job named %(name)r") % {"name": job_name})
    # A registered batch job needs no set-up before its first start.
    return job_create(name=job_name, kind=JobKind.BATCH, batch_job_name=job_name, user=user)


def _started_with(job: BatchJob, idempotency_key: str) -> BatchLog | None:
    """The run an earlier start of `job` with this Idempotency-Key made, if any."""
    if not idempotency_key:
        return None
    return BatchLog.objects.filter(job=job, idempotency_key=idempotency_key).first()


def _execution(execution_id: int) -> BatchLog:
    execution = BatchLog.objects.select_related("job").filter(pk=execution_id).first()
    if execution is None:
        raise NotFound(_("no execution %(id)s") % {"id": execution_id})
    return execution


def instance_key(job: BatchJob, params: dict[str, Any], fire_time: FireTime | None = None) -> str:
    """Job + identifying parameters, hashed: the job instance (Spring's JobInstance). The
    identifying ones are those the job declares (all when it declares none), and RUN_ID; and
    the period of a start given a logical time (`fire_time`), so that each period is its own
    instance. A start without one is identified by its parameters alone, as before."""
    registered = batch_job_get(job.batch_job_name)
    names = registered.identifying if registered and registered.identifying is not None else None
    if names is not None and RUN_ID in params:
        names = (*names, RUN_ID)
    identifying = params if names is None else {name: params.get(name) for name in names}
    period = [] if fire_time is None else [
        fire_time.logical_time, fire_time.data_interval_start, fire_time.data_interval_end
    ]  # fmt: skip
    canonical = json.dumps([job.name, identifying, *period], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def job_start(
    *,
    job_name: str,
    params: dict[str, Any] | None = None,
    user=None,
    trigger: Trigger = Trigger.API,
    idempotency_key: str = "",
    logical_time: datetime | None = None,
) -> BatchLog:
    """Start a job now: the one door for every start by hand, from the admin, the API and the
    command line. For a batch job this is a new job instance: refused if the instance already
    completed, is running, or failed (restart that execution instead). `logical_time`: the
    instant the run stands for (a past period, say), by default its start time; a batch job
    given one has one instance per period."""
    logical_time = logical_time_checked(logical_time)
    job = _job(job_name, user=user)
    fire_time = execution_fire_time(job=job, logical_time=logical_time) if logical_time else None
    if job.kind != JobKind.BATCH:
        return execution_start(job=job, trigger=trigger, params=params, user=user,
                               idempotency_key=idempotency_key, fire_time=fire_time)  # fmt: skip
    if existing := _started_with(job, idempotency_key):
        return existing
    merged = execution_params(job=job, params=params)
    key = instance_key(job, merged, fire_time)
    with transaction.atomic():
        # Serialise starts of the same job so that two cannot both see "no instance yet".
        BatchJob.objects.select_for_update().filter(pk=job.pk).first()
        previous = BatchLog.objects.filter(instance_key=key).order_by("-pk").first()
        if previous is not None:
            if (
                previous.status == ExecutionStatus.COMPLETED
                or BatchLog.objects.filter(
                    instance_key=key, status=ExecutionStatus.COMPLETED
                ).exists()
            ):
                raise Conflict(
                    _(
                        "this instance of %(job)s already completed (execution %(execution)s); "
                        "start it with other parameters, or start_next_instance"
                    )
                    % {"job": job.name, "execution": previous.pk}
                )
            if previous.status in ACTIVE_STATUSES:
                raise Conflict(
                    _("this instance of %(job)s is running: execution %(execution)s")
                    % {"job": job.name, "execution": previous.pk}
                )
            if previous.status in RESTARTABLE_STATUSES:
                raise Conflict(
                    _(
                        "this instance of %(job)s ended %(status)s in execution %(execution)s; "
                        "restart that execution to resume it"
                    )
                    % {"job": job.name, "status": previous.status, "execution": previous.pk}
                )
        return execution_start(job=job, trigger=trigger, params=merged, user=user,
                               idempotency_key=idempotency_key, instance_key=key,
                               fire_time=fire_time)  # fmt: skip


def run_id_increment(params: dict[str, Any]) -> dict[str, Any]:
    """Spring's RunIdIncrementer: RUN_ID one more than in the last instance's parameters (1 for
    the first), the others carried over."""
    last = params.get(RUN_ID)
    last = last if isinstance(last, int) and not isinstance(last, bool) else 0
    return {**params, RUN_ID: last + 1}


def job_start_next_instance(
    *,
    job_name: str,
    params: dict[str, Any] | None = None,
    user=None,
    trigger: Trigger = Trigger.API,
    idempotency_key: str = "",
    run_id_by_default: bool = False,
) -> BatchLog:
    """Start the instance after the last one (Spring's JobOperator.startNextInstance): the
    parameters the job's incrementer makes from the last instance's (from the job's defaults
    for the first), with `params` over them, as Spring's getNextJobParameters merges them. A
    batch job registered without an incrementer is refused, or with `run_id_by_default`
    stepped by run_id_increment (Spring's RunIdIncrementer)."""
    job = _job(job_name, user=user)
    registered = batch_job_get(job.batch_job_name) if job.kind == JobKind.BATCH else None
    incrementer = registered.incrementer if registered else None
    if job.kind == JobKind.BATCH and incrementer is None and run_id_by_default:
        incrementer = run_id_increment
    if incrementer is None:
        raise Conflict(
            _("%(job)s has no parameter incrementer, so it has no next instance")
            % {"job": job_name}
        )
    if params is not None and not isinstance(params, dict):
        raise InvalidInput({"params": _("Must be a JSON object.")})
    with transaction.atomic():
        # Read the last instance under the lock job_start takes, so that two starts at once
        # step to two instances instead of colliding on one.
        BatchJob.objects.select_for_update().filter(pk=job.pk).first()
        # The last instance (Spring's getLastJobInstance): its first execution, since a later
        # restart of an older instance is not the last instance.
        last = (
            BatchLog.objects.filter(job=job, restart_of__isnull=True)
            .exclude(instance_key="")
            .order_by("-pk")
            .first()
        )
        stepped = incrementer(dict(last.params) if last else dict(job.params))
        return job_start(job_name=job_name, params={**stepped, **(params or {})}, user=user,
                         trigger=trigger, idempotency_key=idempotency_key)  # fmt: skip


def job_launch(
    *,
    job_name: str,
    params: dict[str, Any] | None = None,
    user=None,
    trigger: Trigger = Trigger.API,
    idempotency_key: str = "",
) -> BatchLog:
    """Start a job as the seed's route did (Spring's JobOperator.startNextInstance, every job
    given a RunIdIncrementer): each call starts a new run. A batch job starts its next instance
    (its own incrementer, else RUN_ID stepped); an HTTP or handler job has no instances, and
    starts as by job_start."""
    job = _job(job_name, user=user)
    if job.kind != JobKind.BATCH:
        return job_start(job_name=job_name, params=params, user=user, trigger=trigger,
                         idempotency_key=idempotency_key)  # fmt: skip
    # The same key answers with the run it started, not with the instance after it.
    if existing := _started_with(job, idempotency_key):
        return existing
    return job_start_next_instance(
        job_name=job_name,
        params=params,
        user=user,
        trigger=trigger,
        idempotency_key=idempotency_key,
        run_id_by_default=True,
    )


def execution_stop(*, execution_id: int, user=None) -> BatchLog:
    """A queued execution stops at once; a running one is asked to (STOPPING), and ends
    STOPPED at its next chunk boundary, or at once for an HTTP or handler job."""
    execution = _execution(execution_id)
    with transaction.atomic():
        changed = execution_stop_request(execution_id=execution.pk)
        if changed:  # None: asked before, nothing new to record
            audit_record(action=AuditAction.STOPPED, obj=execution, user=user,
                         changes={"status": list(changed)})  # fmt: skip
    execution.refresh_from_db()
    return execution


def execution_restart(*, execution_id: int, user=None) -> BatchLog:
    """A new execution of the same instance: completed steps are not run again, an unfinished
    step resumes from its last checkpoint, partitions that completed are kept."""
    source = _execution(execution_id)
    with transaction.atomic():
        plan = execution_restart_prepare(source=source)
        restarted = execution_start(
            job=source.job, trigger=Trigger.RESTART, params=source.params, user=user,
            instance_key=plan.instance_key, restart_of=source,
            execution_context=plan.execution_context,
            fire_time=FireTime.of(source),  # the same period, resumed
        )  # fmt: skip
        execution_partitions_carry(source=source, restarted=restarted)
    return restarted


def execution_abandon(*, execution_id: int, user=None) -> BatchLog:
    """Mark a STOPPED or FAILED execution ABANDONED: never restartable; its unfinished steps
    are ABANDONED too and a restart of the instance will not run them."""
    execution = _execution(execution_id)
    with transaction.atomic():
        was = execution_set_abandoned(execution_id=execution.pk)
        audit_record(action=AuditAction.ABANDONED, obj=execution, user=user,
                     changes={"status": [was, ExecutionStatus.ABANDONED]})  # fmt: skip
    execution.refresh_from_db()
    return execution


def job_running_executions(*, job_name: str) -> list[int]:
    if not BatchJob.objects.filter(name=job_name).exists():
        raise NotFound(_("no job named %(name)r") % {"name": job_name})
    return list(
        BatchLog.objects.filter(job__name=job_name, status__in=ACTIVE_STATUSES)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def execution_summary(*, execution_id: int) -> dict[str, Any]:
    execution = _execution(execution_id)
    return {
        "id": execution.pk,
        "job": execution.job.name,
        "status": execution.status,
        "trigger": execution.trigger,
        "params": execution.params,
        "attempts": execution.attempts,
        "created_at": execution.created_at,
        "started_at": execution.started_at,
        "finished_at": execution.finished_at,
        "error": execution.error,
        "restart_of": execution.restart_of_id,
        "logical_time": execution.logical_time,
        "data_interval_start": execution.data_interval_start,
        "data_interval_end": execution.data_interval_end,
    }


def execution_step_summaries(*, execution_id: int) -> list[dict[str, Any]]:
    execution = _execution(execution_id)
    return [
        {
            "step": row.step_name,
            "partition": row.partition,
            "status": row.status,
            "exit_status": row.exit_status,
            "started_at": row.started_at,
            "finished_at": row.finished_at,
            "error": row.error,
            **{name: getattr(row, name) for name in COUNTERS},
        }  # fmt: skip
        for row in StepExecution.objects.filter(execution=execution).order_by("pk")
    ]
