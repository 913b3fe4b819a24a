"""Running handlers the way a worker does, in this process: job_create, execution_start, then
execution_run once per attempt (claim, run, record)."""

import itertools
import uuid

import pytest
from django.db import connections

from batchjobs.execution.runner import execution_run
from batchjobs.handlers.registry import HandlerContext
from batchjobs.models import BatchLog, Trigger
from batchjobs.models.execution import FINAL_STATUSES
from batchjobs.services.executions import execution_start
from batchjobs.services.jobs import job_create

# execution_start publishes a message on commit; no worker consumes this queue, so a worker
# started by another test module cannot race the in-process run for the claim.
IN_PROCESS_QUEUE = "tests-handlers-in-process"

_task_ids = itertools.count(1)


@pytest.fixture(scope="session", autouse=True)
def in_process_queue(redis_broker):
    from config.celery_app import app

    def purge() -> None:
        with app.connection_for_write() as connection:
            connection.default_channel.queue_purge(IN_PROCESS_QUEUE)

    purge()
    yield IN_PROCESS_QUEUE
    purge()


@pytest.fixture(scope="session", autouse=True)
def no_session_left_on_the_test_databases(django_db_setup, django_db_blocker):
    """execution_run heartbeats from a daemon thread whose connection lasts as long as this
    process, and PostgreSQL refuses to drop a database someone is connected to. The test
    databases belong to this pytest session, so any other session on them is a leftover."""
    yield
    with django_db_blocker.unblock():
        for alias in ("default", "warehouse"):
            connection = connections[alias]
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )


def _run_attempts(execution: BatchLog) -> BatchLog:
    """Run attempts in this process until the execution ends; retries are due at once because
    the jobs made here have no backoff."""
    for _ in range(execution.max_attempts):
        before = execution.attempts
        execution_run(
            execution_id=execution.pk, worker="pytest-in-process", task_id=f"t{next(_task_ids)}"
        )
        execution.refresh_from_db()
        if execution.status in FINAL_STATUSES:
            return execution
        if execution.attempts == before:
            pytest.fail(f"execution {execution.pk} was not claimed (status {execution.status})")
    pytest.fail(f"execution {execution.pk} still {execution.status} after max_attempts")


@pytest.fixture
def start_handler_job():
    """Create a handler job and start one execution of it; returns the QUEUED execution."""

    def start(handler_name: str, params: dict | None = None, **job_fields) -> BatchLog:
        fields = {
            "name": f"{handler_name}-{uuid.uuid4().hex[:8]}",
            "kind": "handler",
            "handler_name": handler_name,
            "params": params or {},
            "queue": IN_PROCESS_QUEUE,
            "retry_backoff_seconds": 0,
            "retry_backoff_max_seconds": 0,
            **job_fields,
        }
        job = job_create(**fields)
        return execution_start(job=job, trigger=Trigger.API)

    return start


@pytest.fixture
def run_handler_job(start_handler_job):
    """Create a handler job, start it and run its attempts in this process until it ends."""

    def run(handler_name: str, params: dict | None = None, **job_fields) -> BatchLog:
        return _run_attempts(start_handler_job(handler_name, params, **job_fields))

    return run


class ProgressLog(list):
    """The (done, total) pairs a handler reported, in order."""

    def __call__(self, done: int, total: int | None) -> None:
        self.append((done, total))


@pytest.fixture
def handler_context():
    """A context for calling a handler function directly; .progress_log records its progress."""

    def make(*, attempt: int = 1, max_attempts: int = 3) -> HandlerContext:
        log = ProgressLog()
        ctx = HandlerContext(
            execution_id=1,
            attempt=attempt,
            max_attempts=max_attempts,
            job_name="direct-call",
            report_progress=log,
        )
        ctx.progress_log = log  # type: ignore[attr-defined]
        return ctx

    return make
