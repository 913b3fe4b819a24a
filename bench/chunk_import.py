"""CSV -> PostgreSQL through the batch engine against a plain psycopg COPY, side by side.

The same generated file of customers (email,name,active) goes into the same kind of table
(ExampleCustomer's: bigint identity key, unique e-mail) two ways:

- copy: one psycopg 3 `COPY ... FROM STDIN (FORMAT csv, HEADER)` stream of the file's bytes, one
  transaction: the ceiling (DESIGN.md §7 measured ~180,000 rows/s on this kind of machine).
- engine: the examples.csv_import batch job, run in-process as a worker runs it
  (operator.job_start, then execution_run): CsvReader -> CustomerRow processor ->
  PostgresCopyWriter, chunks of 1,000, each chunk one transaction with its checkpoint; the
  step overlaps its writes (overlap_writes): chunk k+1 is read while PostgreSQL takes in k.

Each variant runs in a child process of its own, so its peak RSS (VmHWM) is its own; the
variants alternate for --rounds rounds and the best round of each counts (noise only slows a
run down). The engine also runs once on the first 100,000 rows to show that its memory does not
grow with the row count. `--partitioned` then runs examples.csv_import_partitioned on real Celery
workers (--workers, each `-c 1`): the worker that claims the execution runs partitions beside
the one the others take.

Run (PostgreSQL and Redis required):

    .venv/bin/python bench/chunk_import.py [--rows 1000000] [--rounds 2] [--partitioned]

DATABASE_URL (default postgres://postgres@127.0.0.1:5432/bj_chunk_bench) must name a database
called bj_chunk_bench*: the bench drops, creates and migrates it, and drops it at the end.
REDIS_URL defaults to redis://127.0.0.1:6379/10, a Redis database the bench empties at the end.
`--profile` runs one more engine round under cProfile and prints where its time goes.

The last line is `RESULT copy_rows_per_s=<x> engine_rows_per_s=<y> ratio=<y/x> rss_mb=<z>`.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, Python puts bench/ on the path, not the project.
sys.path.insert(0, str(ROOT))

from bench import support  # noqa: E402
from bench.support import BenchError, peak_rss_mb  # noqa: E402
from tests.support.processes import Process, queue_purge, worker_command  # noqa: E402

DATABASE_PREFIX = "bj_chunk_bench"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bj_chunk_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/10"
COPY_TABLE = "bench_copy_customer"
SMALL_ROWS = 100_000
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
RUN_TIMEOUT_SECONDS = 1800.0


# --- environment --------------------------------------------------------------------------------


def _environment() -> dict:
    """Check and complete the environment the bench and its children share."""
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    # The imports measured are the examples' (batchjobs_examples registers them when installed).
    os.environ["BATCHJOBS_EXAMPLES"] = "true"
    return support.database_config(
        prefix=DATABASE_PREFIX,
        bench="the bench",
        usage="drops and recreates it",
        postgres_reason="it measures COPY",
    )


def _load() -> str:
    """The load average: other programs on the machine slow both variants down, unevenly."""
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


def _psycopg_connect():
    import psycopg

    return psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)


def generate_csv(path: Path, rows: int) -> None:
    """Customers as a CRM would export them: mixed-case e-mails, some quoted names."""
    with path.open("w", newline="") as file:
        file.write("email,name,active\n")
        block = []
        for n in range(1, rows + 1):
            active = "true" if n % 5 else "false"
            name = f'"Customer {n}, Jr."' if n % 10 == 0 else f"Customer {n}"
            block.append(f"User{n}@Example.com,{name},{active}\n")
            if len(block) == 10_000:
                file.write("".join(block))
                block.clear()
        file.write("".join(block))


# --- the children -------------------------------------------------------------------------------


def child_copy(path: Path, rows: int) -> dict:
    """The ceiling: one COPY stream of the file's bytes into the copy table."""
    with _psycopg_connect() as connection, connection.cursor() as cursor:
        started = time.perf_counter()
        statement = (
            f"COPY {COPY_TABLE} (email, name, active) FROM STDIN WITH (FORMAT csv, HEADER true)"
        )
        with path.open("rb") as file, cursor.copy(statement) as copy:
            while data := file.read(1 << 20):
                copy.write(data)
        seconds = time.perf_counter() - started
        cursor.execute(f"SELECT count(*) FROM {COPY_TABLE}")
        (count,) = cursor.fetchone()
    if count != rows:
        raise BenchError(f"copy: {count} rows in the table, {rows} expected")
    return {"seconds": seconds, "rss_mb": peak_rss_mb()}


def _batch_job_ensure(name: str) -> None:
    from batchjobs.models import BatchJob, JobKind
    from batchjobs.services.jobs import job_create

    if not BatchJob.objects.filter(name=name).exists():
        # One attempt with room to finish: a failure is reported, not retried or timed out.
        job_create(name=name, kind=JobKind.BATCH, batch_job_name=name, max_attempts=1,
                   timeout_seconds=RUN_TIMEOUT_SECONDS)  # fmt: skip


def child_engine(path: Path, rows: int, run: int, profile: bool) -> dict:
    """examples.csv_import in this process, as a worker runs it."""
    import django

    django.setup()
    from batchjobs.execution.runner import execution_run
    from batchjobs.models import BatchLog, StepExecution
    from batchjobs.services import operator

    _batch_job_ensure("examples.csv_import")
    execution = operator.job_start(
        job_name="examples.csv_import", params={"file": str(path), "run": run}
    )
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started, cpu_started = time.perf_counter(), time.process_time()
    execution_run(execution_id=execution.pk, worker="bench", task_id=f"bench-{run}")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if profiler:
        profiler.disable()
    execution = BatchLog.objects.get(pk=execution.pk)
    load = StepExecution.objects.get(execution=execution, step_name="import")
    if execution.status != "COMPLETED" or load.write_count != rows:
        raise BenchError(
            f"engine: {execution.status}, {load.write_count} of {rows} rows written\n"
            f"{execution.error[-2000:]}"
        )
    if profiler:
        import pstats

        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(40)
    return {"seconds": seconds, "cpu_seconds": cpu, "rss_mb": peak_rss_mb()}


def _child(args: argparse.Namespace) -> int:
    if args.child == "copy":
        result = child_copy(Path(args.file), args.rows)
    else:
        result = child_engine(Path(args.file), args.rows, args.run, args.profile)
    print("CHILD " + json.dumps(result))
    return 0


def _run_child(kind: str, path: Path, rows: int, *, run: int = 0, profile: bool = False) -> dict:
    command = [sys.executable, __file__, "--child", kind, "--file", str(path),
               "--rows", str(rows), "--run", str(run)]  # fmt: skip
    if profile:
        command.append("--profile")
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("CHILD ")]
    if done.returncode or not lines:
        raise BenchError(f"{kind} child failed ({done.returncode}):\n{done.stderr[-4000:]}")
    if profile:
        print(done.stderr[-12000:])
    return json.loads(lines[-1][len("CHILD ") :])


# --- the parent ---------------------------------------------------------------------------------


def _prepare_tables() -> None:
    """The copy table is ExampleCustomer's table again (LIKE ... INCLUDING ALL: identity key,
    unique e-mail), with a default for updated_at, which the file does not hold."""
    with _psycopg_connect() as connection:
        connection.execute(
            f"CREATE TABLE {COPY_TABLE} (LIKE batchjobs_examplecustomer INCLUDING ALL)"
        )
        connection.execute(f"ALTER TABLE {COPY_TABLE} ALTER COLUMN updated_at SET DEFAULT now()")


def _empty_tables() -> None:
    # Every run starts from empty tables and a clean checkpoint: no run pays for another's
    # dirty pages.
    with _psycopg_connect() as connection:
        connection.execute(f"TRUNCATE batchjobs_examplecustomer, {COPY_TABLE} RESTART IDENTITY")
        connection.execute("CHECKPOINT")


class Workers:
    """Celery workers of the bench (prefork, `-c 1` each), in sessions of their own."""

    def __init__(self, count: int, log_dir: Path) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.processes = [
            Process(
                f"worker{index}",
                worker_command(f"{DATABASE_PREFIX}{index}", concurrency=1),
                env,
                log_dir=log_dir,
            )
            for index in range(count)
        ]

    def wait_ready(self) -> None:
        give_up = time.monotonic() + READY_TIMEOUT_SECONDS
        for process in self.processes:
            timeout = max(give_up - time.monotonic(), 0.0)
            support.process_wait_for_log(process, " ready.", timeout=timeout)

    def check_alive(self) -> None:
        for process in self.processes:
            support.process_check_alive(process)

    def stop(self) -> None:
        for process in self.processes:
            process.stop(STOP_TIMEOUT_SECONDS)


def run_partitioned(path: Path, rows: int, workers: int, partitions: int, log_dir: Path) -> float:
    """examples.csv_import_partitioned on `workers` real workers; rows/s from the execution's
    start (its claim by a worker) to its end, both recorded by the database."""
    from batchjobs.models import BatchLog, StepExecution
    from batchjobs.services import operator

    _batch_job_ensure("examples.csv_import_partitioned")
    queue_purge()  # the in-process runs left their start messages there
    pool = Workers(workers, log_dir)
    try:
        pool.wait_ready()
        execution = operator.job_start(
            job_name="examples.csv_import_partitioned",
            params={"file": str(path), "partitions": partitions},
        )
        _wait_until_ended(execution, pool)
    finally:
        pool.stop()
    parts = StepExecution.objects.filter(execution=execution).exclude(partition="")
    written = sum(parts.values_list("write_count", flat=True))
    if execution.status != "COMPLETED" or written != rows:
        raise BenchError(f"partitioned: {execution.status}, {written} of {rows} rows written\n"
                         f"{execution.error[-2000:]}")  # fmt: skip
    execution = BatchLog.objects.get(pk=execution.pk)
    seconds = (execution.finished_at - execution.started_at).total_seconds()
    by_partition = {row.partition: row.write_count for row in parts}
    print(f"  rows written by partition: {by_partition}")
    return rows / seconds


def _wait_until_ended(execution, pool: Workers) -> None:
    """Poll the execution until it reaches a final status; fail if a worker dies or the run
    takes longer than RUN_TIMEOUT_SECONDS."""
    give_up = time.monotonic() + RUN_TIMEOUT_SECONDS
    while True:
        execution.refresh_from_db()
        if execution.status in ("COMPLETED", "FAILED", "STOPPED", "ABANDONED"):
            return
        pool.check_alive()
        if time.monotonic() > give_up:
            raise BenchError("the partitioned run did not finish in time")
        time.sleep(0.2)


def _cleanup(config: dict, temp_dir: Path) -> None:
    try:
        import redis

        redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()  # the bench's own database
    except Exception as exc:  # cleaning up: report, do not mask the outcome
        print(f"chunk_import: could not empty Redis: {exc}", file=sys.stderr)
    support.database_drop_reporting(config, prefix=DATABASE_PREFIX, bench="chunk_import")
    shutil.rmtree(temp_dir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="CSV rows (default 1e6)")
    parser.add_argument("--rounds", type=int, default=2, help="copy+engine pairs (default 2)")
    parser.add_argument("--partitioned", action="store_true", help="also run on real workers")
    parser.add_argument("--workers", type=int, default=2, help="workers for --partitioned")
    parser.add_argument("--partitions", type=int, default=4, help="partitions for --partitioned")
    parser.add_argument("--profile", action="store_true", help="profile one more engine round")
    parser.add_argument("--child", choices=["copy", "engine"], help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--run", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    try:
        config = _environment()
        if args.child:
            return _child(args)
    except BenchError as exc:
        print(f"chunk_import: {exc}", file=sys.stderr)
        return 2
    if args.rows < SMALL_ROWS or args.rounds < 1:
        parser.error(f"--rows must be at least {SMALL_ROWS} and --rounds at least 1")
    sys.stdout.reconfigure(line_buffering=True)
    support.exit_on_sigterm()

    temp_dir = Path(tempfile.mkdtemp(prefix="bj_chunk_bench-"))
    # Anything Django would keep under var/ (the warehouse SQLite file...) stays in temp_dir.
    os.environ["BATCHJOBS_VAR_DIR"] = str(temp_dir)
    try:
        return _bench(args, config, temp_dir)
    except BenchError as exc:
        print(f"chunk_import: {exc}", file=sys.stderr)
        return 1
    finally:
        _cleanup(config, temp_dir)


def _bench(args: argparse.Namespace, config: dict, temp_dir: Path) -> int:
    """A fresh database and the two files; the copy/engine rounds, the engine on the small
    file, the optional profile and partitioned runs; then the summary and RESULT line."""
    support.database_recreate(config)
    support.django_setup_and_migrate(["default"])
    _prepare_tables()
    big, small = temp_dir / "customers.csv", temp_dir / "customers-100k.csv"
    _make_files(args, big, small)
    copy_rates, engine_rates, engine_rss = _run_rounds(args, big)
    _empty_tables()
    run_number = args.rounds * 2 + 1
    small_result = _run_child("engine", small, SMALL_ROWS, run=run_number)
    print(f"  engine on {SMALL_ROWS:,} rows: {SMALL_ROWS / small_result['seconds']:,.0f} rows/s, "
          f"peak RSS {small_result['rss_mb']:.0f} MB")  # fmt: skip
    if args.profile:
        _empty_tables()
        run_number += 1
        _run_child("engine", big, args.rows, run=run_number, profile=True)
    if args.partitioned:
        _empty_tables()
        log_dir = temp_dir / "logs"
        log_dir.mkdir()
        rate = run_partitioned(big, args.rows, args.workers, args.partitions, log_dir)
        print(f"  partitioned, {args.workers} workers (-c 1), {args.partitions} partitions: "
              f"{rate:,.0f} rows/s")  # fmt: skip
    _print_summary(args, max(copy_rates), max(engine_rates), max(engine_rss), small_result)
    return 0


def _make_files(args: argparse.Namespace, big: Path, small: Path) -> None:
    started = time.perf_counter()
    generate_csv(big, args.rows)
    generate_csv(small, SMALL_ROWS)
    print(
        f"chunk_import: rows={args.rows} ({big.stat().st_size / 1e6:.1f} MB) rounds={args.rounds} "
        f"chunk=1000 cpus={os.cpu_count()} load={_load()}; files made in "
        f"{time.perf_counter() - started:.1f}s"
    )


def _run_rounds(args: argparse.Namespace, big: Path) -> tuple[list, list, list]:
    """copy then engine, --rounds times, each from empty tables (runs numbered 1, 2, ...):
    the rates of each variant and the engine's peak RSS per round."""
    copy_rates, engine_rates, engine_rss = [], [], []
    run_number = 0
    for number in range(1, args.rounds + 1):
        for kind in ("copy", "engine"):
            _empty_tables()
            run_number += 1
            result = _run_child(kind, big, args.rows, run=run_number)
            rate = args.rows / result["seconds"]
            (copy_rates if kind == "copy" else engine_rates).append(rate)
            if kind == "engine":
                engine_rss.append(result["rss_mb"])
            cpu = (f", client CPU {result['cpu_seconds'] / args.rows * 1e6:.1f} us/row"
                   if "cpu_seconds" in result else "")  # fmt: skip
            print(f"  round {number} {kind:6}: {result['seconds']:7.2f} s = {rate:9,.0f} rows/s, "
                  f"peak RSS {result['rss_mb']:.0f} MB{cpu}")  # fmt: skip
    return copy_rates, engine_rates, engine_rss


def _print_summary(
    args: argparse.Namespace, copy_rate: float, engine_rate: float, rss: float, small: dict
) -> None:
    """The best of each variant, the engine's memory at both sizes, and the RESULT line."""
    print(f"load average at the end: {_load()}")
    print(f"copy (best)  : {copy_rate:,.0f} rows/s")
    print(f"engine (best): {engine_rate:,.0f} rows/s = {engine_rate / copy_rate:.0%} of copy "
          f"(goal: 50%)")  # fmt: skip
    print(f"engine peak RSS: {small['rss_mb']:.0f} MB at {SMALL_ROWS:,} rows, "
          f"{rss:.0f} MB at {args.rows:,} rows")  # fmt: skip
    print(
        f"RESULT copy_rows_per_s={copy_rate:.0f} engine_rows_per_s={engine_rate:.0f} "
        f"ratio={engine_rate / copy_rate:.3f} rss_mb={rss:.0f}"
    )


if __name__ == "__main__":
    sys.exit(main())
