"""The quick start's demo data: jobs that show an HTTP call, a handler, schedules and retries,
each with a first run so that there is something to look at."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from batchjobs.errors import InvalidInput
from batchjobs.models import BatchJob, BatchLog, JobKind, ScheduleKind, Trigger
from batchjobs.models.clock import database_now
from batchjobs.models.job import AssertionKind
from batchjobs.models.schedule import IntervalUnit
from batchjobs.services import operator
from batchjobs.services.jobs import job_create
from batchjobs.services.schedules import schedule_create

DEMO_PING_PATH = "/demo/ping"


@dataclass(frozen=True)
class DemoJob:
    job: dict[str, Any]  # job_create's arguments
    schedule: dict[str, Any] | None = None  # schedule_create's arguments, if it has one

    @property
    def name(self) -> str:
        return self.job["name"]


def demo_jobs(*, base_url: str, now: datetime) -> list[DemoJob]:
    """The demo jobs. `base_url` is where the web process listens."""
    return [
        DemoJob(
            job={
                "name": "demo-http-ping",
                "description": (
                    "Calls the quick start's own /demo/ping endpoint and checks that the JSON "
                    "answer says status ok. The endpoint echoes the Idempotency-Key and attempt "
                    "number batchjobs sends."
                ),
                "kind": JobKind.HTTP,
                "http_url": f"{base_url.rstrip('/')}{DEMO_PING_PATH}",
                "http_assertion_kind": AssertionKind.JSON_PATH,
                "http_assertion": "$.status",
                "http_assertion_value": '"ok"',
                "timeout_seconds": 10,
                "retry_backoff_seconds": 2,
                "retry_backoff_max_seconds": 10,
            },
            # The first run is the one demo_seed starts; the schedule takes over a minute later.
            schedule={
                "kind": ScheduleKind.INTERVAL,
                "interval_every": 1,
                "interval_unit": IntervalUnit.MINUTES,
                "start_at": now + timedelta(minutes=1),
            },
        ),
        DemoJob(
            job={
                "name": "demo-sleep",
                "description": "Runs the built-in sleep handler, which reports its progress.",
                "kind": JobKind.HANDLER,
                "handler_name": "sleep",
                "params": {"seconds": 5},
            },
            schedule={"kind": ScheduleKind.CRON, "cron_expression": "*/5 * * * *"},
        ),
        DemoJob(
            job={
                "name": "demo-flaky",
                "description": (
                    "Fails twice and succeeds on its third attempt, to show retries with "
                    "backoff: open its execution to see the three attempts."
                ),
                "kind": JobKind.HANDLER,
                "handler_name": "fail",
                "params": {"message": "failing on purpose (demo)", "succeed_on_attempt": 3},
                "max_attempts": 3,
                "retry_backoff_seconds": 2,
                "retry_backoff_max_seconds": 10,
            },
        ),
    ]


@dataclass(frozen=True)
class DemoJobOutcome:
    name: str
    job: BatchJob | None
    created: bool
    first_run: BatchLog | None = None
    # Why the job could not be created, e.g. BATCHJOBS_HTTP_ALLOWLIST does not cover its URL.
    error: str = ""


def demo_seed(*, base_url: str) -> list[DemoJobOutcome]:
    """Create the demo jobs that do not exist yet, with their schedules, and start a first run
    of each new one.

    Idempotent: a job that already exists (by name) is left as it is, edits included.
    """
    outcomes = []
    for demo in demo_jobs(base_url=base_url, now=database_now()):
        existing = BatchJob.objects.filter(name=demo.name).first()
        if existing is not None:
            outcomes.append(DemoJobOutcome(name=demo.name, job=existing, created=False))
            continue
        try:
            with transaction.atomic():
                job = job_create(**demo.job)
                if demo.schedule:
                    schedule_create(job=job, **demo.schedule)
                first_run = operator.job_start(job_name=job.name, trigger=Trigger.CLI)
        except InvalidInput as exc:
            outcomes.append(DemoJobOutcome(name=demo.name, job=None, created=False, error=str(exc)))
            continue
        outcomes.append(DemoJobOutcome(name=demo.name, job=job, created=True, first_run=first_run))
    return outcomes
