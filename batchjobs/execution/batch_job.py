"""Jobs of kind `batch`: the thin adapter between a worker and batchjobs.batch."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.utils.translation import gettext

from batchjobs.batch.engine import COMPLETED, STOPPED, JobRunner
from batchjobs.batch.job import PartitionStep
from batchjobs.batch.registry import batch_job_get
from batchjobs.batch.repository import JobRepository
from batchjobs.models import AttemptStatus, BatchLog, ExecutionStatus

from .fire_time import execution_fire_time_read
from .heartbeat import heartbeat
from .outcome import AttemptOutcome
from .publish import EXECUTE_PARTITION_TASK, task_send


def _runner(execution: BatchLog) -> JobRunner | None:
    registered = batch_job_get(execution.job.batch_job_name)
    if registered is None:
        return None
    context = execution.execution_context or {}
    restart = context.get("restart", {})
    return JobRunner(
        job=registered.build(),
        execution_id=execution.pk,
        # The period the run stands for, as job parameters (Spring's JobParameters): over any
        # of the run's own by the same names, since they say which instance this is.
        params={**execution.params, **execution_fire_time_read(execution.pk).variables()},
        job_context=dict(context.get("job", {})),
        repository=JobRepository(execution.pk),
        done_steps=frozenset(restart.get("done_steps", [])),
        resume=restart.get("resume", {}),
        launch_partitions=lambda step_name, count: _partitions_publish(execution, step_name, count),
        partition_silence=timedelta(seconds=settings.BATCHJOBS_HEARTBEAT_TIMEOUT_SECONDS),
        partition_heartbeat=_partition_heartbeat,
    )


def run_batch_job(execution: BatchLog, *, attempt: int) -> AttemptOutcome:
    runner = _runner(execution)
    if runner is None:
        return AttemptOutcome(
            status=AttemptStatus.FAILED,
            # Written by the worker in the deployment's language (LANGUAGE_CODE).
            error=gettext("batch job %(name)s is not registered in this worker")
            % {"name": repr(execution.job.batch_job_name)},
        )
    result = runner.run()
    summary = {"status": result.status, "exit_status": result.exit_status}
    if result.status == COMPLETED:
        return AttemptOutcome(status=AttemptStatus.SUCCEEDED, result=summary)
    if result.status == STOPPED:
        return AttemptOutcome(status=AttemptStatus.STOPPED, error=result.error, result=summary)
    return AttemptOutcome(
        status=AttemptStatus.FAILED, error=result.error, retryable=result.retryable
    )


def partition_work(*, execution_id: int, step_name: str) -> int:
    """Run waiting partitions of a partitioned step until none is left (a Celery task's body).
    Returns how many this call ran."""
    ran = 0
    while True:
        execution = BatchLog.objects.select_related("job").filter(pk=execution_id).first()
        if execution is None or execution.status != ExecutionStatus.STARTED:
            return ran  # the execution ended, or is stopping: claim nothing more
        runner = _runner(execution)
        step = runner.job.nodes.get(step_name) if runner else None
        if runner is None or not isinstance(step, PartitionStep):
            return ran
        if runner.run_one_partition(step) is None:
            return ran
        ran += 1


def _partitions_publish(execution: BatchLog, step_name: str, count: int) -> None:
    job = execution.job
    for _ in range(count):
        task_send(
            EXECUTE_PARTITION_TASK,
            [execution.pk, step_name],
            queue=job.queue,
            priority=job.priority,
            time_limit=job.timeout_seconds + settings.BATCHJOBS_HARD_TIMEOUT_GRACE_SECONDS,
        )


@contextmanager
def _partition_heartbeat(step_execution_id: int) -> Iterator[None]:
    heartbeat.watch_step(step_execution_id)
    try:
        yield
    finally:
        heartbeat.unwatch_step(step_execution_id)
