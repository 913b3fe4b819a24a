"""Worker throughput: bare Celery no-op tasks against no-op handler executions, side by side.

Both modes run on the same worker settings (prefork, same concurrency and prefetch, same Redis
and PostgreSQL, same queue and priority). For each mode the bench enqueues N messages while no
worker consumes, then starts a worker and measures the drain: from the first task started to
the last one finished. A bare task records those edges in Redis itself; an execution's edges
are its first attempt's `started_at` (the claim) and its last `finished_at` (the outcome), read
from PostgreSQL. Worker start-up is outside both windows. Modes alternate (bare, full, bare,
full, ...) so that drift of the machine hits both; the best run of each is reported, since
noise only ever slows a run down.

Each run also reports the CPU spent per task (Linux /proc): the worker's main process (from
"ready"), its pool children, and the PostgreSQL backends serving them. Unlike the rates, that
figure barely moves when other programs compete for the cores.

Run (PostgreSQL and Redis required):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bj_bench REDIS_URL=redis://127.0.0.1:6379/6 \
        .venv/bin/python bench/worker_throughput.py [--n 2000] [--concurrency 2] [--rounds 2]

The database named in DATABASE_URL must be called bj_bench*: the bench drops it, creates and
migrates it afresh (so the schema is the working tree's), and drops it again at the end. It
uses a queue of its own in the Redis database of REDIS_URL and deletes that queue's keys.

The last line is `RESULT bare_per_s=<x> full_per_s=<y> ratio=<y/x>`. `--profile DIR` runs
every worker child under cProfile, counts its SQL statements, and prints where a task's time
goes (the profiler slows the children: read its figures as shares, not rates).
"""

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, Python puts bench/ on the path, not the project.
sys.path.insert(0, str(ROOT))

from bench import support  # noqa: E402
from bench.support import BenchError, child_pids, cpu_seconds  # noqa: E402
from tests.support.processes import Process, worker_command  # noqa: E402

DATABASE_PREFIX = "bj_bench"
POLL_SECONDS = 0.25
# A run whose count of finished tasks stands still this long is broken (a task raising, a
# schema out of date), not slow: fail instead of waiting for the overall limit.
STALL_SECONDS = 30.0
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0


# --- environment and database ----------------------------------------------------------------


def _database_config() -> dict:
    config = support.database_config(
        prefix=DATABASE_PREFIX,
        bench="the bench",
        usage="drops and recreates it",
        postgres_reason=(
            "it measures the production path; SQLite serialises writers and would measure its lock"
        ),
    )
    support.redis_url_check("redis://127.0.0.1:6379/6")
    return config


def _setup_django() -> None:
    support.django_setup_default()
    from django.core.management import call_command

    # A model edited without its migration may fail every task (a missing column): say so up
    # front. Only a warning, since most such edits (help_text, choices) change no column.
    try:
        call_command("makemigrations", check=True, dry_run=True, verbosity=0)
    except SystemExit:
        print(
            "worker_throughput: warning: the models have changes that no migration holds "
            "(makemigrations --check); a run failing on a missing column comes from that",
            file=sys.stderr,
        )


# --- CPU accounting ---------------------------------------------------------------------------


def _postgres_backends() -> list[int]:
    """Backends of the bench database other than this process's own: the worker's."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        return [pid for (pid,) in cursor.fetchall()]


@dataclass
class CpuUse:
    """CPU seconds spent by each side while the worker drained a run."""

    main: float
    children: float
    postgres: float

    def per_task(self, n: int) -> str:
        ms = 1000 / n
        worker = (self.main + self.children) * ms
        return (
            f"worker {worker:.2f} ms (main {self.main * ms:.2f}, children "
            f"{self.children * ms:.2f}) + postgres {self.postgres * ms:.2f} ms"
        )

    def total_per_task_ms(self, n: int) -> float:
        return (self.main + self.children + self.postgres) * 1000 / n


# --- worker process ---------------------------------------------------------------------------


class Worker(Process):
    """A prefork worker in its own session (so that stopping it reaches its children too), like
    tests/support/processes.py's and a production worker, plus our bare task's module."""

    def __init__(self, label: str, *, queue: str, concurrency: int, log_dir: Path, env: dict):
        # Named after its queue too, so that no other worker's name can clash with it.
        command = worker_command(
            f"{queue}-{label}", "-I", "bench.bench_tasks", queues=queue, concurrency=concurrency
        )
        super().__init__(label, command, env, log_dir=log_dir)
        self.main_cpu_at_ready = 0.0
        self._children_cpu: dict[int, float] = {}
        self._postgres_cpu: dict[int, float] = {}

    def wait_ready(self) -> None:
        # Polled often: the queue is full, so tasks start the moment the worker is ready, and
        # the main process's CPU is counted from here (its start-up is not a task's cost).
        support.process_wait_for_log(self, " ready.", timeout=READY_TIMEOUT_SECONDS, interval=0.02)
        self.main_cpu_at_ready = cpu_seconds(self.popen.pid)

    def sample_cpu(self) -> None:
        """Note the CPU of the children and backends alive now. Both count from their birth,
        and a backend may end mid-run (CONN_MAX_AGE), so the last figure seen of each is kept."""
        for pid in child_pids(self.popen.pid):
            self._children_cpu[pid] = cpu_seconds(pid) or self._children_cpu.get(pid, 0.0)
        for pid in _postgres_backends():
            self._postgres_cpu[pid] = cpu_seconds(pid) or self._postgres_cpu.get(pid, 0.0)

    def cpu_use(self) -> CpuUse:
        """Read before stopping, while the children and backends are still there."""
        self.sample_cpu()
        return CpuUse(
            main=cpu_seconds(self.popen.pid) - self.main_cpu_at_ready,
            children=sum(self._children_cpu.values()),
            postgres=sum(self._postgres_cpu.values()),
        )


# --- the two modes ----------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    cpu: CpuUse | None


class Bench:
    def __init__(self, args: argparse.Namespace, log_dir: Path):
        from django.conf import settings

        from batchjobs.services.jobs import job_create
        from bench.bench_tasks import redis_client

        self.args = args
        self.log_dir = log_dir
        # A queue of the bench's own: its workers never take anybody else's messages.
        self.queue = f"bj_bench-{uuid.uuid4().hex[:8]}"
        self.redis = redis_client()
        self.round_timeout = 60 + args.n / 10  # generous: ten tasks a second would still pass
        self.prefetch = settings.CELERY_WORKER_PREFETCH_MULTIPLIER
        self.measure_cpu = Path("/proc/self/stat").exists()
        self.job = job_create(
            name="bench-worker-throughput", kind="handler", handler_name="noop", queue=self.queue
        )

    def worker_env(self, label: str) -> dict:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if self.args.profile:
            profile_dir = Path(self.args.profile) / label
            profile_dir.mkdir(parents=True, exist_ok=True)
            env["BENCH_PROFILE_DIR"] = str(profile_dir.resolve())
        return env

    def drain(self, label: str, remaining) -> CpuUse | None:
        """Start a worker on the full queue and wait until `remaining()` reaches 0."""
        worker = Worker(
            label,
            queue=self.queue,
            concurrency=self.args.concurrency,
            log_dir=self.log_dir,
            env=self.worker_env(label),
        )
        try:
            worker.wait_ready()
            give_up = time.monotonic() + self.round_timeout
            last, last_change = remaining(), time.monotonic()
            while last:
                time.sleep(POLL_SECONDS)
                support.process_check_alive(worker)
                if self.measure_cpu:
                    worker.sample_cpu()
                now, left = time.monotonic(), remaining()
                if left != last:
                    last, last_change = left, now
                elif now - last_change > STALL_SECONDS:
                    raise BenchError(
                        f"{label}: {left} tasks left and no progress for {STALL_SECONDS:.0f}s, "
                        f"see {worker.log_path}:\n{worker.log()[-3000:]}"
                    )
                if now > give_up:
                    raise BenchError(f"{label}: not drained within {self.round_timeout:.0f}s")
            return worker.cpu_use() if self.measure_cpu else None
        finally:
            # SIGTERM is Celery's warm shutdown: children end cleanly (and dump a profile if
            # asked).
            worker.stop(STOP_TIMEOUT_SECONDS)

    def run_bare(self, label: str) -> Run:
        from bench.bench_tasks import noop

        key = f"{self.queue}:{label}"
        with noop.app.producer_or_acquire() as producer:
            for _ in range(self.args.n):
                noop.apply_async(
                    args=[key], queue=self.queue, priority=self.job.priority, producer=producer
                )
        cpu = self.drain(label, lambda: self.args.n - int(self.redis.get(f"{key}:done") or 0))
        first = self.redis.zscore(f"{key}:edges", "first")
        last = self.redis.zscore(f"{key}:edges", "last")
        self.redis.delete(f"{key}:edges", f"{key}:done")
        return Run(seconds=last - first, cpu=cpu)

    def run_full(self, label: str) -> Run:
        from django.db.models import Max, Min

        from batchjobs.execution.publish import executions_publish
        from batchjobs.models import BatchAttempt, BatchLog, ExecutionStatus, Trigger
        from batchjobs.models.clock import database_now

        # The fields execution_start() sets, in one statement instead of N.
        now = database_now()
        rows = BatchLog.objects.bulk_create(
            [
                BatchLog(
                    job=self.job,
                    trigger=Trigger.CLI,
                    params={},
                    status=ExecutionStatus.QUEUED,
                    exclusive=False,
                    max_attempts=self.job.max_attempts,
                    next_attempt_at=now,
                    published_at=now,
                )
                for _ in range(self.args.n)
            ],
            batch_size=1000,
        )
        executions_publish([row.pk for row in rows])
        executions = BatchLog.objects.filter(job=self.job)
        waiting = executions.filter(status__in=(ExecutionStatus.QUEUED, ExecutionStatus.STARTED))
        cpu = self.drain(label, waiting.count)
        completed = executions.filter(status=ExecutionStatus.COMPLETED).count()
        if completed != self.args.n:
            raise BenchError(f"{label}: {completed} of {self.args.n} executions COMPLETED")
        first = BatchAttempt.objects.filter(execution__job=self.job).aggregate(
            first=Min("started_at")
        )["first"]
        last = executions.aggregate(last=Max("finished_at"))["last"]
        # Each round starts from an empty table, as the bare mode starts from empty keys.
        executions.delete()
        return Run(seconds=(last - first).total_seconds(), cpu=cpu)

    def delete_queue(self) -> None:
        support.queue_keys_delete(self.redis, self.queue)


# --- profile report ---------------------------------------------------------------------------


def _profile_report(profile_dir: Path, n_per_run: int) -> None:
    """What a task costs in the worker children: SQL statements and the hottest functions."""
    import pstats

    for mode in ("bare", "full"):
        runs = sorted(profile_dir.glob(f"*-{mode}"))
        if not runs:
            continue
        run = runs[-1]  # the last round: warm caches, like a worker that has been up a while
        print(f"\n== profile of {run.name} ({n_per_run} tasks, all children) ==")
        _print_queries(run, n_per_run)
        files = [str(path) for path in run.glob("child-*.pstats")]
        if files:
            stats = pstats.Stats(*files)
            print(f"cProfile: {stats.total_tt / n_per_run * 1000:.3f} ms per task in children")
            stats.sort_stats("cumulative").print_stats(40)
            stats.sort_stats("tottime").print_stats(25)


def _print_queries(run: Path, n_per_run: int) -> None:
    """The SQL statements the children of `run` counted, summed over children, per task."""
    queries: dict[str, list[float]] = {}
    threads: dict[str, int] = {}
    for path in run.glob("child-*-queries.json"):
        data = json.loads(path.read_text())
        for statement, (count, seconds) in data["queries"].items():
            # Savepoint names are unique per use; fold them into one line each.
            statement = re.sub(r'"s\d+_x\d+"', '"sN"', " ".join(statement.split()))
            entry = queries.setdefault(statement, [0, 0.0])
            entry[0] += count
            entry[1] += seconds
        for thread, count in data["threads"].items():
            threads[thread] = threads.get(thread, 0) + count
    if not queries:
        return
    total = sum(count for count, _ in queries.values())
    seconds = sum(s for _, s in queries.values())
    print(
        f"SQL through Django: {total / n_per_run:.2f} statements per task, "
        f"{seconds / n_per_run * 1000:.3f} ms per task inside them "
        f"(BEGIN/COMMIT not included); by thread {threads}"
    )
    for statement, (count, spent) in sorted(queries.items(), key=lambda kv: -kv[1][0]):
        print(
            f"  {count / n_per_run:5.2f}/task {spent / count * 1000:7.3f} ms each  "
            f"{statement[:140]}"
        )


# --- main -------------------------------------------------------------------------------------


def _run_rounds(bench: Bench, args: argparse.Namespace) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {"bare": [], "full": []}
    for number in range(1, args.rounds + 1):
        for mode, run in (("bare", bench.run_bare), ("full", bench.run_full)):
            result = run(f"round{number}-{mode}")
            runs[mode].append(result)
            cpu = f"; CPU per task: {result.cpu.per_task(args.n)}" if result.cpu else ""
            print(
                f"  round {number} {mode}: {args.n} drained in {result.seconds:.3f} s "
                f"= {args.n / result.seconds:.1f}/s{cpu}"
            )
    return runs


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="tasks per run (default 2000)")
    parser.add_argument("--concurrency", type=int, default=2, help="prefork children (default 2)")
    parser.add_argument(
        "--rounds", type=int, default=2, help="bare+full pairs, interleaved (default 2)"
    )
    parser.add_argument("--profile", metavar="DIR", help="cProfile the worker children into DIR")
    parser.add_argument("--keep-logs", action="store_true", help="keep the worker logs")
    parser.add_argument(
        "--keep-database", action="store_true", help="leave the bench database for inspection"
    )
    args = parser.parse_args()
    if args.n < 1 or args.concurrency < 1 or args.rounds < 1:
        parser.error("--n, --concurrency and --rounds must be at least 1")
    return args


def main() -> int:
    args = parse_args()
    # Progress lines must show as rounds end, in order with the error messages.
    sys.stdout.reconfigure(line_buffering=True)
    support.exit_on_sigterm()
    config = support.config_or_report("worker_throughput", _database_config)
    if config is None:
        return 2
    runs = run_bench(args, config)
    if runs is None:
        return 1
    print_summary(runs, args)
    return 0


def run_bench(args: argparse.Namespace, config: dict) -> dict[str, list[Run]] | None:
    """A fresh database, the rounds, then the database dropped and the logs removed (kept
    with --keep-logs or when the bench failed). The runs of each mode, None on failure."""
    log_dir = Path(tempfile.mkdtemp(prefix="bj_bench-logs-"))
    runs = None
    try:
        support.database_recreate(config)
        _setup_django()
        bench = Bench(args, log_dir)
        print(
            f"worker_throughput: n={args.n} concurrency={args.concurrency} pool=prefork "
            f"prefetch_multiplier={bench.prefetch} rounds={args.rounds} cpus={os.cpu_count()}"
        )
        try:
            runs = _run_rounds(bench, args)
        finally:
            bench.delete_queue()
    except BenchError as exc:
        print(f"worker_throughput: {exc}", file=sys.stderr)
    finally:
        if not args.keep_database:
            support.database_drop_reporting(
                config, prefix=DATABASE_PREFIX, bench="worker_throughput"
            )
        if args.keep_logs or (runs is None and any(log_dir.iterdir())):
            print(f"worker logs: {log_dir}")
        else:
            shutil.rmtree(log_dir, ignore_errors=True)
    return runs


def print_summary(runs: dict[str, list[Run]], args: argparse.Namespace) -> None:
    """Best and median rate of each mode, their ratio, the profile if asked, the RESULT."""
    rates = {mode: [args.n / run.seconds for run in mode_runs] for mode, mode_runs in runs.items()}
    bare, full = max(rates["bare"]), max(rates["full"])
    for mode, values in rates.items():
        cpus = [run.cpu.total_per_task_ms(args.n) for run in runs[mode] if run.cpu]
        cpu = f", CPU {statistics.median(cpus):.2f} ms per task (median)" if cpus else ""
        print(
            f"{mode}: best {max(values):.1f}/s, median {statistics.median(values):.1f}/s "
            f"over {len(values)} runs{cpu}"
        )
    print(f"full path / bare Celery: {full / bare:.1%} (goal: at least 50%)")
    if args.profile:
        _profile_report(Path(args.profile), args.n)
    print(f"RESULT bare_per_s={bare:.1f} full_per_s={full:.1f} ratio={full / bare:.3f}")


if __name__ == "__main__":
    sys.exit(main())
