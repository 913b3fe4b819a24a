"""Jobs and executions for tests, created through the services so they pass validation; and
ended executions (finished) written as the lifecycle leaves them."""

from datetime import timedelta
from typing import Any

from django.utils import timezone

from batchjobs.models import BatchJob, BatchLog, ExecutionStatus, JobKind, Trigger
from batchjobs.services import operator
from batchjobs.services.executions import execution_start
from batchjobs.services.jobs import job_create

from .runs import IN_PROCESS_QUEUE

_counter = iter(range(1, 10**9))
# The error of a FAILED execution made by finished().
TRACEBACK = 'Traceback (most recent call last):\n  File "job.py", line 3\nRuntimeError: boom'


def http_job(url: str, **fields: Any) -> BatchJob:
    defaults = {
        "name": f"http-{next(_counter)}",
        "kind": "http",
        "http_url": url,
        "timeout_seconds": 5,
        "retry_backoff_seconds": 0,
        "retry_jitter": False,
    }
    return job_create(**(defaults | fields))


def handler_job(handler_name: str, **fields: Any) -> BatchJob:
    defaults = {
        "name": f"{handler_name}-{next(_counter)}",
        "kind": "handler",
        "handler_name": handler_name,
        "retry_backoff_seconds": 0,
        "retry_jitter": False,
    }
    return job_create(**(defaults | fields))


def start(job: BatchJob, **params: Any) -> BatchLog:
    return execution_start(job=job, trigger=Trigger.API, params=params or None)


def batch_start(batch_job_name: str, params: dict) -> BatchLog:
    """operator.job_start of a batch job, on a job of one attempt (created if missing, on the queue
    no worker consumes): a failure ends the execution FAILED at once, ready to restart, instead
    of waiting for a retry."""
    if not BatchJob.objects.filter(name=batch_job_name).exists():
        job_create(
            name=batch_job_name, kind=JobKind.BATCH, batch_job_name=batch_job_name,
            max_attempts=1, queue=IN_PROCESS_QUEUE,
        )  # fmt: skip
    return operator.job_start(job_name=batch_job_name, params=params)


def finished(job: BatchJob, status: str, *, seconds: float = 10.0, **fields) -> BatchLog:
    """An execution as the lifecycle leaves it when it ends (the notification tests
    exercise the lifecycle's own hook through a real worker)."""
    end = timezone.now()
    return BatchLog.objects.create(
        job=job,
        trigger=Trigger.SCHEDULE,
        status=status,
        attempts=1,
        max_attempts=1,
        started_at=end - timedelta(seconds=seconds),
        finished_at=end,
        **({"error": TRACEBACK} if status == ExecutionStatus.FAILED else {}) | fields,
    )
