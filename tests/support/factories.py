"""Jobs and executions for tests, created through the services so they pass validation."""

from typing import Any

from batchjobs.models import BatchJob, BatchLog, Trigger
from batchjobs.services.executions import execution_start
from batchjobs.services.jobs import job_create

_counter = iter(range(1, 10**9))


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
