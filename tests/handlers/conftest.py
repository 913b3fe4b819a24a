"""Running handlers the way a worker does, in this process: job_create, execution_start, then
tests.support.runs.run_in_process (claim, run, record) until it ends."""

import uuid

import pytest
from django.db import connections

from batchjobs.handlers.registry import HandlerContext
from batchjobs.models import BatchLog, Trigger
from batchjobs.services.executions import execution_start
from batchjobs.services.jobs import job_create
from tests.support.runs import IN_PROCESS_QUEUE, run_in_process


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
        return run_in_process(
            start_handler_job(handler_name, params, **job_fields), until_ended=True
        )

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
