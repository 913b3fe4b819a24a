"""The data console_pages.py measures the console on: 1,000 jobs and 100,000 executions over
30 days, as a busy installation has them, written with COPY (a few hundred thousand rows in well
under a minute).

- Jobs: HTTP calls, handlers and batch jobs (45/35/20 %), one or two schedules each (cron,
  interval, once), 0-3 of 24 tags. One job, HOT_JOB, has HOT_EXECUTIONS runs: the job page
  measured.
- Executions: spread over the last 30 days, a few jobs with many runs and many with few;
  mostly COMPLETED, FAILED with a traceback (some jobs flaky), a few SKIPPED, STOPPED and
  ABANDONED; 40 running and 100 waiting now. 1-3 attempts each (HTTP attempts with status,
  request and response excerpt), the steps of batch jobs, and log lines for the attempts of the
  last 3 days.
- Two executions the bench opens, found again by their idempotency keys: a FAILED one with 3
  attempts of 200 log lines each (FAILED_KEY, of HOT_JOB) and a running batch job with a
  finished and a running step (RUNNING_KEY).

Everything is drawn from one seeded random generator, so two seedings hold the same rows.
"""

import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

JOBS = 1_000
EXECUTIONS = 100_000
DAYS = 30
HOT_JOB = "bench.hot-report"
HOT_EXECUTIONS = 500
FAILED_KEY = "bench-failed-target"
RUNNING_KEY = "bench-running-target"
# A word of one kind of error (about one failure in six): the search in error text.
SEARCH_WORD = "DeadlockDetected"
RUNNING_NOW = 40
QUEUED_NOW = 100
LOG_DAYS = 3
TARGET_LOG_LINES = 200
RANDOM_SEED = 16

TEAMS = ["billing", "crm", "warehouse", "reports", "search", "mail", "ledger", "inventory"]
VERBS = ["sync", "export", "import", "cleanup", "rollup", "refresh", "notify", "reindex"]
TAG_NAMES = [
    *TEAMS, "nightly", "hourly", "critical", "experimental", "eu", "us", "apac", "finance",
    "gdpr", "backfill", "legacy", "customer-facing", "internal", "slow", "flaky", "v2",
]  # fmt: skip
HANDLERS = ["noop", "sleep", "fail"]
BATCH_JOBS = ["examples.csv_import", "examples.csv_import_partitioned", "examples.db_migration"]
CRONS = ["0 2 * * *", "*/5 * * * *", "15 * * * *", "0 */6 * * *", "30 7 * * 1-5", "0 0 1 * *"]
ZONES = ["UTC", "Asia/Seoul", "Europe/Berlin", "America/New_York"]

FRAMES = """Traceback (most recent call last):
  File "/app/batchjobs/execution/runner.py", line 214, in execution_run
    outcome = run(job, params, attempt)
  File "/app/batchjobs/handlers/registry.py", line 88, in call
    return function(**params)
  File "/srv/{team}/jobs.py", line {line}, in {verb}
    rows = client.fetch(day=params["day"])
  File "/srv/{team}/client.py", line 57, in fetch
    return self._session.get(url, timeout=30).json()
"""
ERRORS = [
    "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='{team}.internal', port=443): "
    "Read timed out. (read timeout=30.0)",
    "psycopg.errors.DeadlockDetected: deadlock detected\nDETAIL:  Process 4242 waits for "
    "ShareLock on transaction 918273; blocked by process 4243.",
    "KeyError: 'customer_id'",
    "FileNotFoundError: [Errno 2] No such file or directory: '/data/{team}/{day}.csv'",
    "ValueError: invalid literal for int() with base 10: 'N/A' (line 1204)",
    "ConnectionRefusedError: [Errno 111] Connection refused",
]
HTTP_FAILURES = [(503, "Service Unavailable"), (500, "Internal Server Error"), (429, "Too Many")]
LOG_MESSAGES = [
    (20, "starting {verb} for {day}"),
    (20, "fetched {n} rows from {team}.internal"),
    (10, "batch {k}: {n} rows written in {ms} ms"),
    (20, "committed chunk {k} ({n} rows)"),
    (30, "slow answer from {team}.internal: {ms} ms"),
    (20, "done: {n} rows"),
]


@dataclass(frozen=True)
class Seeded:
    """The rows the bench requests."""

    hot_job_id: int
    failed_execution_id: int
    running_execution_id: int


def seeded() -> Seeded | None:
    """The seeded rows, or None when the database does not hold a complete seeding."""
    from batchjobs.models import BatchJob, BatchLog

    if BatchJob.objects.count() != JOBS or BatchLog.objects.count() != EXECUTIONS:
        return None
    hot = BatchJob.objects.filter(name=HOT_JOB).values_list("pk", flat=True).first()
    keys = dict(
        BatchLog.objects.filter(idempotency_key__in=[FAILED_KEY, RUNNING_KEY]).values_list(
            "idempotency_key", "pk"
        )
    )
    if hot is None or len(keys) != 2:
        return None
    return Seeded(hot, keys[FAILED_KEY], keys[RUNNING_KEY])


def seeded_at() -> datetime | None:
    """When the data was seeded: its newest execution's creation."""
    from django.db.models import Max

    from batchjobs.models import BatchLog

    return BatchLog.objects.aggregate(newest=Max("created_at"))["newest"]


# --- COPY ---------------------------------------------------------------------------------------


def _column_defaults(model) -> list[tuple[str, str, object, bool]]:
    """(attname, column, default, is_json) per concrete field: what a row leaves out."""
    columns = []
    for field in model._meta.concrete_fields:
        if field.has_default():
            default = field.get_default()
        elif field.null:
            default = None
        else:
            default = "" if field.empty_strings_allowed else None
        columns.append(
            (field.attname, field.column, default, field.get_internal_type() == "JSONField")
        )
    return columns


def copy_rows(model, rows: Iterable[dict]) -> int:
    """COPY `rows` (dicts by attname, the key included; the fields' defaults fill the rest)
    into the model's table, then move its key sequence past them."""
    from django.core.serializers.json import DjangoJSONEncoder
    from django.db import connection

    columns = _column_defaults(model)
    table = model._meta.db_table
    names = ", ".join(f'"{column}"' for _, column, _, _ in columns)
    count = 0
    with connection.cursor() as cursor:
        with cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
            for row in rows:
                values = []
                for attname, _, default, is_json in columns:
                    value = row.get(attname, default)
                    if is_json and value is not None:
                        value = json.dumps(value, cls=DjangoJSONEncoder)
                    values.append(value)
                copy.write_row(values)
                count += 1
        pk = model._meta.pk.column
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('\"{table}\"', '{pk}'), "
            f'(SELECT coalesce(max("{pk}"), 1) FROM "{table}"))'
        )
    return count


# --- jobs, schedules, tags ----------------------------------------------------------------------


def _jobs(rng: random.Random) -> list:
    from django.conf import settings

    from batchjobs.models import BatchJob, JobKind

    jobs = []
    for n in range(JOBS):
        team, verb = TEAMS[n % len(TEAMS)], rng.choice(VERBS)
        name = HOT_JOB if n == 0 else f"{team}.{verb}-{n:04d}"
        draw = rng.random()
        kind = JobKind.HANDLER if n == 0 else (
            JobKind.HTTP if draw < 0.45 else JobKind.HANDLER if draw < 0.8 else JobKind.BATCH
        )  # fmt: skip
        job = BatchJob(
            name=name,
            description=f"{verb.capitalize()} {team} data ({n}).",
            kind=kind,
            enabled=rng.random() < 0.95,
            max_attempts=3,
            timeout_seconds=rng.choice([30.0, 60.0, 300.0, 3600.0]),
        )
        if kind == JobKind.HTTP:
            job.http_method = rng.choice(["GET", "POST"])
            job.http_url = f"https://{team}.example.com/api/{verb}/{n}"
            job.target_host = f"{team}.example.com"
            job.http_headers = [{"name": "Authorization", "value": "secret", "secret": True}]
            job.queue = settings.BATCHJOBS_HTTP_QUEUE
        elif kind == JobKind.HANDLER:
            job.handler_name = rng.choice(HANDLERS)
            job.params = {"seconds": 1} if job.handler_name == "sleep" else {}
            job.queue = settings.CELERY_TASK_DEFAULT_QUEUE
        else:
            job.batch_job_name = rng.choice(BATCH_JOBS)
            job.params = {"file": f"/data/{team}/customers.csv"}
            job.queue = settings.CELERY_TASK_DEFAULT_QUEUE
        jobs.append(job)
    return BatchJob.objects.bulk_create(jobs, batch_size=1000)


def _schedules(rng: random.Random, jobs: list, now: datetime) -> dict[int, int]:
    """One or two schedules per job; the id of each job's first."""
    from batchjobs.models import BatchSchedule, ScheduleKind

    schedules = []
    for job in jobs:
        for _ in range(1 if rng.random() < 0.9 else 2):
            kind = rng.choice([ScheduleKind.CRON, ScheduleKind.CRON, ScheduleKind.INTERVAL,
                               ScheduleKind.ONCE])  # fmt: skip
            schedule = BatchSchedule(
                job=job,
                kind=kind,
                timezone=rng.choice(ZONES),
                paused=rng.random() < 0.05,
                next_fire_at=now + timedelta(seconds=rng.uniform(5, 7 * 86400)),
                run_count=rng.randint(0, 5000),
            )
            if kind == ScheduleKind.CRON:
                schedule.cron_expression = rng.choice(CRONS)
            elif kind == ScheduleKind.INTERVAL:
                schedule.interval_every = rng.choice([1, 5, 15, 60])
                schedule.interval_unit = "minutes"
            else:
                schedule.run_at = schedule.next_fire_at
            schedules.append(schedule)
    created = BatchSchedule.objects.bulk_create(schedules, batch_size=1000)
    first: dict[int, int] = {}
    for schedule in created:
        first.setdefault(schedule.job_id, schedule.pk)
    return first


def _tags(rng: random.Random, jobs: list) -> None:
    from batchjobs.models import BatchJob, JobTag

    tags = JobTag.objects.bulk_create(
        [JobTag(name=name, description=f"Jobs of {name}.") for name in TAG_NAMES]
    )
    through: Any = BatchJob.tags.through  # django-stubs cannot type an automatic through
    links = [
        through(batchjob_id=job.pk, jobtag_id=tag.pk)
        for job in jobs
        for tag in rng.sample(tags, rng.choice([0, 1, 1, 2, 2, 3]))
    ]
    through.objects.bulk_create(links, batch_size=5000)


# --- executions ---------------------------------------------------------------------------------


def _execution_counts(rng: random.Random) -> list[int]:
    """Runs per job: HOT_EXECUTIONS for the first, the rest spread unevenly (a few jobs run
    every minute, many daily)."""
    weights = [rng.lognormvariate(0, 1.2) for _ in range(JOBS - 1)]
    left = EXECUTIONS - HOT_EXECUTIONS
    total = sum(weights)
    counts = [max(1, int(w / total * left)) for w in weights]
    for n in range(left - sum(counts)):
        counts[n % len(counts)] += 1
    while sum(counts) > left:  # max(1, ...) may have added a few
        counts[counts.index(max(counts))] -= 1
    return [HOT_EXECUTIONS, *counts]


@dataclass
class _Ids:
    execution: int = 0
    attempt: int = 0
    line: int = 0
    step: int = 0


class _Writer:
    """Builds the execution rows and their attempts, steps and log lines."""

    def __init__(self, rng: random.Random, now: datetime) -> None:
        self.rng, self.now, self.ids = rng, now, _Ids()
        self.attempts: list[dict] = []
        self.steps: list[dict] = []
        self.lines: list[dict] = []
        self.log_since = now - timedelta(days=LOG_DAYS)

    def error(self, team: str, verb: str, when: datetime, kind: int | None = None) -> str:
        rng = self.rng
        frames = FRAMES.format(team=team, verb=verb, line=rng.randint(20, 400))
        last = ERRORS[rng.randrange(len(ERRORS)) if kind is None else kind]
        return frames + last.format(team=team, day=f"{when:%Y-%m-%d}")

    def log_lines(self, attempt: dict, count: int, team: str, verb: str, failed: bool) -> None:
        rng, at = self.rng, attempt["started_at"]
        for number in range(1, count + 1):
            level, text = LOG_MESSAGES[(number - 1) % len(LOG_MESSAGES)]
            if failed and number == count:
                level, text = 40, "giving up: {team}.internal did not answer"
            self.ids.line += 1
            at += timedelta(milliseconds=rng.randint(5, 400))
            self.lines.append({
                "id": self.ids.line, "attempt_id": attempt["id"], "number": number,
                "logged_at": at, "level": level, "logger": f"{team}.{verb}",
                "message": text.format(verb=verb, team=team, day=f"{at:%Y-%m-%d}",
                                       n=rng.randint(10, 90_000), k=number,
                                       ms=rng.randint(3, 9000)),
            })  # fmt: skip

    def execution(
        self,
        job,
        schedule_id: int | None,
        created: datetime,
        status: str,
        duration: float,
        *,
        key: str = "",
        log_lines: int | None = None,
    ) -> dict:
        """One execution row, its attempts (and their log lines) and a batch job's steps."""
        from batchjobs.models import JobKind

        rng = self.rng
        self.ids.execution += 1
        team, verb = job.name.split(".", 1)[0], job.description.split(" ", 1)[0].lower()
        scheduled = schedule_id is not None and not key and rng.random() < 0.85
        row = {
            "id": self.ids.execution, "job_id": job.pk,
            "schedule_id": schedule_id if scheduled else None,
            "trigger": "schedule" if scheduled else rng.choice(["manual", "api", "cli"]),
            "scheduled_for": created if scheduled else None, "logical_time": created,
            "params": job.params, "status": status, "max_attempts": job.max_attempts,
            "created_at": created, "published_at": created, "idempotency_key": key,
        }  # fmt: skip
        if status == "SKIPPED":
            row.update(finished_at=created, error="Skipped: the previous run was still running.")
            return row
        if status == "QUEUED":
            return row
        tries = {"FAILED": job.max_attempts, "STARTED": 1}.get(
            status, rng.choices([1, 2, 3], [85, 12, 3])[0]
        )
        start = created + timedelta(seconds=rng.uniform(0.01, 2))
        row.update(started_at=start, attempts=tries, worker=f"celery@worker-{rng.randint(1, 6)}")
        logged = created >= self.log_since
        for number in range(1, tries + 1):
            last = number == tries
            took = max(0.01, rng.gauss(duration, duration / 4))
            outcome = {"COMPLETED": "SUCCEEDED", "STARTED": "RUNNING", "STOPPED": "STOPPED"}.get(
                status, "FAILED"
            ) if last else "FAILED"  # fmt: skip
            self.ids.attempt += 1
            attempt = {
                "id": self.ids.attempt, "execution_id": row["id"], "number": number,
                "status": outcome, "worker": row["worker"], "task_id": f"task-{self.ids.attempt}",
                "started_at": start,
                "finished_at": None if outcome == "RUNNING" else start + timedelta(seconds=took),
                "retryable": None if outcome in ("SUCCEEDED", "RUNNING") else not last,
            }  # fmt: skip
            if job.kind == JobKind.HTTP:
                code, reason = (200, "OK") if outcome == "SUCCEEDED" else rng.choice(HTTP_FAILURES)
                attempt.update(
                    http_status=code, response_excerpt=f'{{"status": "{reason}", "n": {number}}}',
                    request={"method": job.http_method, "url": job.http_url,
                             "headers": {"Authorization": "********",
                                         "Idempotency-Key": str(row["id"])}},
                )  # fmt: skip
                if outcome == "FAILED":
                    attempt["error"] = f"HTTP {code} {reason} from {job.http_url}"
            elif outcome == "FAILED":
                attempt["error"] = self.error(team, verb, start)
            self.attempts.append(attempt)
            count = log_lines if log_lines is not None else (
                (2 if job.kind == JobKind.HTTP else 8) if logged else 0
            )  # fmt: skip
            self.log_lines(attempt, count, team, verb, outcome == "FAILED")
            if attempt["finished_at"]:
                start = attempt["finished_at"] + timedelta(seconds=10 * 2 ** (number - 1))
        final = self.attempts[-1]
        if status == "STARTED":
            row.update(heartbeat_at=self.now - timedelta(seconds=rng.uniform(0, 10)))
        else:
            row["finished_at"] = final["finished_at"]
        if status == "COMPLETED":
            row["result"] = {"rows": rng.randint(0, 100_000)}
        elif status in ("FAILED", "ABANDONED"):
            row["error"] = final.get("error") or self.error(team, verb, start)
        elif status == "STOPPED":
            row["error"] = "Stopped by an operator."
        if job.kind == JobKind.BATCH:
            self.batch_steps(row, final)
        elif status == "STARTED":
            row.update(progress_done=rng.randint(100, 5000), progress_total=10_000)
        return row

    def batch_steps(self, row: dict, attempt: dict) -> None:
        rng, status = self.rng, row["status"]
        items = rng.randint(1_000, 300_000)
        for index, name in enumerate(["extract", "load"]):
            step_status = "COMPLETED"
            if index == 1 and status != "COMPLETED":
                step_status = {"STARTED": "STARTED", "STOPPED": "STOPPED"}.get(status, "FAILED")
            done = items if step_status == "COMPLETED" else rng.randint(0, items)
            self.ids.step += 1
            self.steps.append({
                "id": self.ids.step, "execution_id": row["id"], "step_name": name,
                "status": step_status, "exit_status": step_status, "read_count": done,
                "write_count": done - done // 1000, "filter_count": done // 1000,
                "commit_count": done // 1000 + 1,
                "started_at": attempt["started_at"],
                "finished_at": None if step_status == "STARTED" else attempt["finished_at"],
                "heartbeat_at": self.now if step_status == "STARTED" else None,
                "execution_context": {"reader.offset": done},
                "error": row.get("error", "") if step_status == "FAILED" else "",
            })  # fmt: skip


def _status(rng: random.Random, flaky: bool) -> str:
    """A finished run's status: some jobs are flaky."""
    shares = (("FAILED", 0.3 if flaky else 0.05), ("SKIPPED", 0.02), ("STOPPED", 0.005),
              ("ABANDONED", 0.005))  # fmt: skip
    draw = rng.random()
    for status, share in shares:
        if draw < share:
            return status
        draw -= share
    return "COMPLETED"


def _executions(rng: random.Random, jobs: list, schedules: dict[int, int], now: datetime):
    """The execution rows (a generator, for COPY) and the writer that collects the rest."""
    from batchjobs.models import JobKind

    writer = _Writer(rng, now)
    counts = _execution_counts(rng)
    batch_jobs = [n for n, job in enumerate(jobs) if job.kind == JobKind.BATCH]
    active = rng.sample(range(1, JOBS), RUNNING_NOW + QUEUED_NOW)
    running_target = batch_jobs[0]
    now_status = {n: "STARTED" for n in active[:RUNNING_NOW]}
    now_status.update({n: "QUEUED" for n in active[RUNNING_NOW:]})
    now_status[running_target] = "STARTED"

    def rows() -> Iterator[dict]:
        span = DAYS * 86400
        for n, job in enumerate(jobs):
            duration = {JobKind.HTTP: 0.4, JobKind.HANDLER: 20.0, JobKind.BATCH: 120.0}[job.kind]
            duration *= rng.lognormvariate(0, 0.8)
            flaky = rng.random() < 0.1
            offsets = sorted(rng.sample(range(600_000_000, span * 1_000_000), counts[n]))
            times = [now - timedelta(microseconds=offset) for offset in reversed(offsets)]
            schedule = schedules.get(job.pk)
            for created in times[:-1]:
                yield writer.execution(job, schedule, created, _status(rng, flaky), duration)
            last, key, lines = times[-1], "", None
            status = now_status.get(n) or _status(rng, flaky)
            if n == 0:
                status, key, lines = "FAILED", FAILED_KEY, TARGET_LOG_LINES
            elif n == running_target:
                key, lines = RUNNING_KEY, TARGET_LOG_LINES
            if n in now_status:  # happening now: created in the last minutes
                last = now - timedelta(seconds=rng.uniform(5, 300))
            yield writer.execution(job, schedule, last, status, duration, key=key,
                                   log_lines=lines)  # fmt: skip

    return rows(), writer


def seed(*, now: datetime, report=print) -> None:
    """Write the whole data set into an empty, migrated database."""
    import time

    from django.db import connection, transaction

    from batchjobs.models import AttemptLogLine, BatchAttempt, BatchLog, StepExecution

    rng = random.Random(RANDOM_SEED)
    started = time.perf_counter()
    with transaction.atomic():
        jobs = _jobs(rng)
        schedules = _schedules(rng, jobs, now)
        _tags(rng, jobs)
        rows, writer = _executions(rng, jobs, schedules, now)
        executions = copy_rows(BatchLog, rows)
        attempts = copy_rows(BatchAttempt, writer.attempts)
        steps = copy_rows(StepExecution, writer.steps)
        lines = copy_rows(AttemptLogLine, writer.lines)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    report(
        f"  seeded {len(jobs):,} jobs, {len(schedules):,} with schedules, {executions:,} "
        f"executions, {attempts:,} attempts, {steps:,} steps, {lines:,} log lines in "
        f"{time.perf_counter() - started:.1f} s"
    )
