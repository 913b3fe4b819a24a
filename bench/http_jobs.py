"""HTTP jobs due at once: the I/O lane against the prefork worker as shipped, side by side.

N HTTP jobs, each with a once-schedule, all due at the same second, call a local endpoint
(tests/support/endpoint.py: gevent's WSGI server in a process of its own) that answers after D
seconds. Two modes run one after the other on the same PostgreSQL, Redis and endpoint, each
with a beat of its own (`celery beat -S batchjobs.scheduling.beat:BatchScheduler`):

- lane: the I/O lane as `make run` starts it, `celery -A config worker -P gevent -c C
  -Q batchjobs-http --without-mingle --without-gossip` (--processes of them);
- prefork: the worker as shipped before the lane, `-P prefork -c 2 -Q batchjobs-http`. Two
  calls in flight take N*D/2 seconds (1,000 s at N=2000, D=1): the mode stops at
  --baseline-budget seconds after the due time, and its drain time is then extrapolated from
  the calls answered by then, and printed as such.

The jobs and schedules are made in bulk and armed (next_fire_at set, beat notified) once the
workers and beat are up, for the next whole second at least --lead seconds away. Per mode:

- peak calls in flight, counted by the endpoint;
- drain: due time to the last call answered and to the last execution finished (the later);
- fire->request lag p50/p99/max: each execution's first request at the endpoint minus its
  scheduled_for; and its parts: due->inserted by beat (created_at), ->claimed by a worker
  (started_at), ->request at the endpoint;
- CPU per call: user+sys CPU (/proc) of the worker processes (a prefork worker's children
  too) from the arming on, over the calls answered; the PostgreSQL backends serving them, and
  beat, the endpoint and the bench itself (which share the cores), apart; and how long the
  workers were runnable but waited for a core (/proc schedstat: other programs' share), with
  the load average before and after;
- peak PostgreSQL connections: pg_stat_activity of the bench database polled every 0.1 s,
  told apart by application_name (each process gets PGAPPNAME), and what the workers'
  sessions were doing (idle, active, in a transaction, the wait event) in those samples;
- calls that never arrived, keys called more than once, executions not COMPLETED;
- with --host-limit-running/--host-limit-per-second (a RunLimit on host 127.0.0.1, both
  modes): the peak in flight and the most calls in any 1-second window, against the limits.

Run (PostgreSQL and Redis required):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bj REDIS_URL=redis://127.0.0.1:6379/3 \\
        .venv/bin/python bench/http_jobs.py [--n 2000] [--delay 1] [--concurrency 500]

DATABASE_URL names the server: the bench works in a database of its own beside the one named,
`<name>_http_bench` (bj -> bj_http_bench), created and migrated afresh and dropped at the end
(--keep-database keeps it). It uses the queue batchjobs-http in REDIS_URL's Redis database and
deletes the keys it made there. The last line is

    RESULT n=<N> delay_s=<D> lane_drain_s=<x> prefork_drain_s=<y> lane_p99_s=<x>
    peak_in_flight=<k> pg_conns=<c>

where peak_in_flight and pg_conns are the lane's (the prefork worker's with --only prefork),
pg_conns counting the lane worker processes' sessions; a mode not run prints nan.

`--profile DIR` runs the lane workers under cProfile and prints their hottest functions per
call; `--worker-env NAME=VALUE` (repeatable) sets something in the workers' environment (a
pool size, another settings module) to measure a change against the same run's baseline.
"""

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, Python puts bench/ on the path, not the project.
sys.path.insert(0, str(ROOT))

from bench import support  # noqa: E402
from bench.scheduler_support import BeatProcess  # noqa: E402
from bench.support import (  # noqa: E402
    BenchError,
    child_pids,
    cpu_seconds,
    peak_rss_mb,
    percentile,
)
from tests.support.endpoint import Call, Endpoint  # noqa: E402
from tests.support.processes import Process, lane_command, worker_command  # noqa: E402

DATABASE_SUFFIX = "_http_bench"
OUR_SCHEDULER = "batchjobs.scheduling.beat:BatchScheduler"
HOST = "127.0.0.1"
POLL_SECONDS = 0.1
CPU_SAMPLE_SECONDS = 0.5
READY_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 60.0
# A mode whose count of ended executions stands still this long is broken, not slow.
STALL_SECONDS = 60.0
PREFORK_CONCURRENCY = 2
APP_NAME_PREFIX = "http_bench-"
NAN = float("nan")


# --- environment and database -------------------------------------------------------------------


def _database_config() -> dict:
    """DATABASE_URL's config with the bench's own database name (the named one + suffix)."""
    import environ

    url = os.environ.get("DATABASE_URL", "")
    if not url:
        raise BenchError(
            "DATABASE_URL is not set: the bench needs PostgreSQL, e.g. "
            "DATABASE_URL=postgres://postgres@127.0.0.1:5432/bj"
        )
    config = environ.Env.db_url_config(url)
    if "postgresql" not in config["ENGINE"]:
        raise BenchError(
            f"DATABASE_URL points at {config['ENGINE']}: the bench needs PostgreSQL (it "
            "measures the lane's connection pool and counts sessions in pg_stat_activity)"
        )
    support.redis_url_check("redis://127.0.0.1:6379/3")
    config["NAME"] = f"{config['NAME']}{DATABASE_SUFFIX}"
    return config


def _database_url(config: dict) -> str:
    user, password = config.get("USER") or "", config.get("PASSWORD") or ""
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    port = f":{config['PORT']}" if config.get("PORT") else ""
    return f"postgres://{credentials}{config.get('HOST') or HOST}{port}/{config['NAME']}"


def _sql(statement: str, params=None) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def _table(model) -> str:
    return model._meta.db_table


# --- the jobs of one mode -----------------------------------------------------------------------


@dataclass
class Jobs:
    """N HTTP jobs of one mode, each with one once-schedule, not armed yet. Their ids are one
    range (bulk_create on PostgreSQL takes them from one sequence, nobody else inserts)."""

    first_id: int
    last_id: int

    @classmethod
    def create(cls, mode: str, n: int, url: str, timeout_seconds: float) -> "Jobs":
        from datetime import timedelta

        from django.conf import settings

        from batchjobs.models import BatchJob, BatchSchedule
        from batchjobs.models.clock import database_now

        # bulk_create skips BatchJob.save(): the queue and target host are set here as it would.
        jobs = BatchJob.objects.bulk_create(
            (
                BatchJob(
                    name=f"{APP_NAME_PREFIX}{mode}-{index}",
                    kind="http",
                    http_url=url,
                    queue=settings.BATCHJOBS_HTTP_QUEUE,
                    target_host=HOST,
                    timeout_seconds=timeout_seconds,
                    # One attempt: a failed call shows as an execution not COMPLETED instead
                    # of a retry hidden in the drain time.
                    max_attempts=1,
                    retry_jitter=False,
                )
                for index in range(n)
            ),
            batch_size=2000,
        )
        far = database_now() + timedelta(days=1)
        BatchSchedule.objects.bulk_create(
            (BatchSchedule(job=job, kind="once", run_at=far, next_fire_at=None) for job in jobs),
            batch_size=2000,
        )
        for model in (BatchJob, BatchSchedule):
            _sql(f"ANALYZE {_table(model)}")
        ids = [job.pk for job in jobs]
        if max(ids) - min(ids) + 1 != n:
            raise BenchError(f"the {n} jobs of {mode} did not get one range of ids")
        return cls(min(ids), max(ids))

    def arm(self, lead: float) -> float:
        """Make every schedule due at the first whole second `lead` seconds from now (database
        clock) and wake beat; return that due time (unix time)."""
        from datetime import timedelta

        from batchjobs.models import BatchSchedule
        from batchjobs.models.clock import database_now

        earliest = database_now() + timedelta(seconds=lead)
        due = earliest.replace(microsecond=0) + timedelta(seconds=1)
        _sql(
            f"UPDATE {_table(BatchSchedule)} SET run_at = %s, next_fire_at = %s "
            "WHERE job_id BETWEEN %s AND %s",
            [due, due, self.first_id, self.last_id],
        )
        _sql("NOTIFY batchjobs_schedules")  # beat's wake-up (scheduling/wakeup.py)
        return due.timestamp()

    def ended(self) -> int:
        from batchjobs.models import BatchLog
        from batchjobs.models.execution import FINAL_STATUSES

        return BatchLog.objects.filter(
            job__id__range=(self.first_id, self.last_id), status__in=FINAL_STATUSES
        ).count()

    def executions(self) -> list["Execution"]:
        from batchjobs.models import BatchLog

        rows = BatchLog.objects.filter(job__id__range=(self.first_id, self.last_id)).values_list(
            "pk", "status", "scheduled_for", "created_at", "started_at", "finished_at"
        )
        return [Execution(pk, status, *map(_unix, times)) for pk, status, *times in rows]

    def attempts(self) -> int:
        from batchjobs.models import BatchAttempt

        return BatchAttempt.objects.filter(
            execution__job__id__range=(self.first_id, self.last_id)
        ).count()


@dataclass
class Execution:
    """An execution's times, as unix time (None: not yet)."""

    pk: int
    status: str
    scheduled_for: float | None  # due (every execution here is a schedule's fire)
    created_at: float | None  # beat inserted it
    started_at: float | None  # a worker claimed it (its first attempt)
    finished_at: float | None


def _unix(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment else None


# --- what the processes of a mode use -----------------------------------------------------------


def runqueue_wait_seconds(pid: int) -> float:
    """Time the process's threads spent runnable but waiting for a core (schedstat): what
    other programs on the machine took from it. 0 if it is gone."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        pass
    return total / 1e9


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


@dataclass
class Usage:
    """CPU seconds of the workers (and their PostgreSQL backends) since the arming, and the
    peak PostgreSQL sessions, polled. The last figure seen of each process counts: a prefork
    child or a backend may end before the mode does."""

    worker_pids: list[int]
    workers_app: str
    cpu_at_start: dict[int, float] = field(default_factory=dict)
    cpu_last: dict[int, float] = field(default_factory=dict)
    wait_at_start: dict[int, float] = field(default_factory=dict)
    wait_last: dict[int, float] = field(default_factory=dict)
    backend_cpu_at_start: dict[int, float] = field(default_factory=dict)
    backend_cpu_last: dict[int, float] = field(default_factory=dict)
    peak_worker_sessions: int = 0
    peak_sessions: int = 0
    # What the workers' sessions were doing, one count per session per sample: "idle",
    # "active", "idle in transaction", with the wait event if any ("active (IO:WALSync)").
    worker_session_states: Counter[str] = field(default_factory=Counter)
    _next_cpu_sample: float = 0.0

    def start(self) -> None:
        self.sample_cpu()
        self.cpu_at_start = dict(self.cpu_last)
        self.wait_at_start = dict(self.wait_last)
        self.backend_cpu_at_start = dict(self.backend_cpu_last)

    def sample(self) -> None:
        rows = _sql(
            "SELECT application_name, state, wait_event_type, wait_event FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND application_name LIKE %s",
            [APP_NAME_PREFIX + "%"],
        )
        sessions = Counter(app for app, *_ in rows)
        for app, state, wait_type, wait in rows:
            if app == self.workers_app:
                self.worker_session_states[f"{state} ({wait_type}:{wait})" if wait else state] += 1
        workers = sessions.get(self.workers_app, 0)
        self.peak_worker_sessions = max(self.peak_worker_sessions, workers)
        self.peak_sessions = max(self.peak_sessions, sum(sessions.values()))
        if time.monotonic() >= self._next_cpu_sample:
            self.sample_cpu()

    def sample_cpu(self) -> None:
        self._next_cpu_sample = time.monotonic() + CPU_SAMPLE_SECONDS
        for root in self.worker_pids:
            for pid in (root, *child_pids(root)):
                self.cpu_last[pid] = cpu_seconds(pid) or self.cpu_last.get(pid, 0.0)
                self.wait_last[pid] = runqueue_wait_seconds(pid) or self.wait_last.get(pid, 0.0)
        backends = _sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = %s",
            [self.workers_app],
        )
        for (pid,) in backends:
            self.backend_cpu_last[pid] = cpu_seconds(pid) or self.backend_cpu_last.get(pid, 0.0)

    def worker_cpu(self) -> float:
        return _spent(self.cpu_last, self.cpu_at_start)

    def worker_runqueue_wait(self) -> float:
        return _spent(self.wait_last, self.wait_at_start)

    def backend_cpu(self) -> float:
        return _spent(self.backend_cpu_last, self.backend_cpu_at_start)


def _spent(last: dict[int, float], at_start: dict[int, float]) -> float:
    return sum(seconds - at_start.get(pid, 0.0) for pid, seconds in last.items())


# --- one mode -----------------------------------------------------------------------------------


@dataclass
class ModeResult:
    mode: str
    description: str
    n: int
    due: float
    stopped_at: float
    capped: bool
    calls: list[Call]
    peak_in_flight: int
    executions: list[Execution]
    attempts: int
    worker_cpu: float
    worker_runqueue_wait: float
    backend_cpu: float
    peak_worker_sessions: int
    peak_sessions: int
    worker_session_states: Counter[str]
    worker_rss_mb: list[float]
    other_cpu: dict[str, float]
    load_before: str
    load_after: str

    @property
    def first_arrival(self) -> dict[str, float]:
        first: dict[str, float] = {}
        for call in sorted(self.calls, key=lambda call: call.arrived):
            first.setdefault(call.key, call.arrived)
        return first

    @property
    def answered(self) -> list[float]:
        return [call.answered for call in self.calls if call.answered is not None]

    @property
    def lags(self) -> list[float]:
        """Fire->request lag of each execution whose call arrived."""
        return [lag for lag, *_ in self.lag_parts()]

    def lag_parts(self) -> list[tuple[float, float, float, float]]:
        """(whole lag, due->inserted by beat, inserted->claimed, claimed->request arrived) of
        each execution whose call arrived."""
        first = self.first_arrival
        parts = []
        for execution in self.executions:
            arrived = first.get(str(execution.pk))
            due, created, claimed = (
                execution.scheduled_for, execution.created_at, execution.started_at
            )  # fmt: skip
            if arrived is None or due is None or created is None or claimed is None:
                continue
            parts.append((arrived - due, created - due, claimed - created, arrived - claimed))
        return parts

    @property
    def drain(self) -> float:
        """Due time to the last call answered or execution finished; when capped, N over the
        rate of calls answered by the cap (extrapolated)."""
        if self.capped:
            answered = len(self.answered)
            return self.n * (self.stopped_at - self.due) / answered if answered else math.inf
        return max([*self.answered, *self.finished]) - self.due

    @property
    def finished(self) -> list[float]:
        return [e.finished_at for e in self.executions if e.finished_at is not None]

    @property
    def p99(self) -> float:
        return percentile(self.lags, 0.99)


def run_mode(bench: "Bench", mode: str) -> ModeResult:
    args = bench.args
    label = f"{mode}-{bench.tag}"
    jobs = Jobs.create(label, args.n, bench.endpoint.url(label, args.delay), args.job_timeout)
    workers_app = f"{APP_NAME_PREFIX}{mode}-worker"
    workers, description = bench.start_workers(mode, workers_app)
    beat = None
    try:
        beat = BeatProcess(
            label=f"beat-{label}",
            scheduler=OUR_SCHEDULER,
            log_dir=bench.log_dir,
            extra_env=bench.process_env(f"{APP_NAME_PREFIX}beat"),
        )
        beat.wait_started(READY_TIMEOUT_SECONDS)
        usage = Usage([worker.popen.pid for worker in workers], workers_app)
        usage.start()
        others = {
            "beat": beat.popen.pid,
            "endpoint": bench.endpoint.process.popen.pid,
            "this bench": os.getpid(),
        }
        others_at_start = {name: cpu_seconds(pid) for name, pid in others.items()}
        load_before = load_average()
        due = jobs.arm(args.lead)
        print(
            f"{mode}: {description}; {args.n} jobs due at "
            f"{datetime.fromtimestamp(due, UTC):%H:%M:%S} UTC, endpoint delay {args.delay:g} s"
        )
        budget = args.baseline_budget if mode == "prefork" else None
        capped = wait_for_drain(bench, jobs, workers, beat, usage, due=due, budget=budget)
        stopped_at = time.time()
        usage.sample_cpu()
        other_cpu = {name: cpu_seconds(pid) - others_at_start[name] for name, pid in others.items()}
        stats = bench.endpoint.stats(label)
        return ModeResult(
            mode=mode,
            description=description,
            n=args.n,
            due=due,
            stopped_at=stopped_at,
            capped=capped,
            calls=stats.calls,
            peak_in_flight=stats.peak_in_flight,
            executions=jobs.executions(),
            attempts=jobs.attempts(),
            worker_cpu=usage.worker_cpu(),
            worker_runqueue_wait=usage.worker_runqueue_wait(),
            backend_cpu=usage.backend_cpu(),
            peak_worker_sessions=usage.peak_worker_sessions,
            peak_sessions=usage.peak_sessions,
            worker_session_states=usage.worker_session_states,
            worker_rss_mb=[peak_rss_mb(worker.popen.pid) for worker in workers],
            other_cpu=other_cpu,
            load_before=load_before,
            load_after=load_average(),
        )
    finally:
        for process in [*workers, *([beat] if beat else [])]:
            process.stop(STOP_TIMEOUT_SECONDS)
        bench.queue_delete()


def wait_for_drain(bench, jobs: Jobs, workers, beat, usage: Usage, *, due: float, budget) -> bool:
    """Poll until every execution has ended; True if the budget (seconds after `due`) ran
    out first. A stall or the overall --timeout fails the bench."""
    n, timeout = bench.args.n, bench.args.timeout
    last, last_change = -1, time.monotonic()
    while True:
        time.sleep(POLL_SECONDS)
        for process in workers:
            support.process_check_alive(process)
        beat.check_alive()
        usage.sample()
        ended = jobs.ended()
        if ended >= n:
            return False
        now = time.time()
        if budget is not None and now > due + budget:
            return True
        if ended != last:
            last, last_change = ended, time.monotonic()
        elif now > due and time.monotonic() - last_change > STALL_SECONDS:
            raise BenchError(
                f"{ended} of {n} executions ended and no progress for {STALL_SECONDS:.0f} s; "
                f"worker log {workers[0].log_path}:\n{workers[0].log()[-3000:]}"
            )
        if now > due + timeout:
            raise BenchError(f"{ended} of {n} executions ended {timeout:.0f} s after the due time")


# --- the bench ----------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, log_dir: Path, endpoint: Endpoint):
        from django.conf import settings

        self.args = args
        self.log_dir = log_dir
        self.endpoint = endpoint
        self.tag = uuid.uuid4().hex[:6]
        self.queue = settings.BATCHJOBS_HTTP_QUEUE
        self.redis = support.redis_client()
        self._keys_before = set(self.redis.scan_iter(count=1000))

    def process_env(self, app_name: str) -> dict[str, str]:
        """What every worker and beat of the bench runs with: the bench database (from this
        process's environment), the endpoint allowed past the SSRF guard, and a libpq
        application_name that tells its sessions apart in pg_stat_activity."""
        return {
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "DJANGO_DEBUG": "false",
            "BATCHJOBS_EXAMPLES": "false",
            "BATCHJOBS_HTTP_ALLOWLIST": f"{HOST}:{self.endpoint.port}",
            "PYTHONUNBUFFERED": "1",
            "PGAPPNAME": app_name,
        }

    def start_workers(self, mode: str, app_name: str) -> tuple[list[Process], str]:
        args = self.args
        env = dict(os.environ, **self.process_env(app_name))
        env.update(setting.split("=", 1) for setting in args.worker_env)
        # The commands the tests start, as production runs them.
        if mode == "lane":
            count, pool, concurrency, command = (
                args.processes, "gevent", args.concurrency, lane_command
            )  # fmt: skip
        else:
            count, pool, concurrency, command = 1, "prefork", PREFORK_CONCURRENCY, worker_command
        workers = []
        try:
            for number in range(count):
                name = f"{mode}{number}-{self.tag}"
                argv = command(name, queues=self.queue, concurrency=concurrency)
                if args.profile and mode == "lane":
                    argv = self.profiled(argv, name)
                workers.append(Process(name, argv, env, log_dir=self.log_dir))
            for worker in workers:
                support.process_wait_for_log(worker, " ready.", timeout=READY_TIMEOUT_SECONDS)
        except BaseException:
            for worker in workers:
                worker.stop(STOP_TIMEOUT_SECONDS)
            raise
        processes = f"{count} processes x " if count > 1 else ""
        return workers, f"-P {pool} {processes}-c {concurrency} -Q {self.queue}"

    def profiled(self, argv: list[str], name: str) -> list[str]:
        """`argv` (`python -m celery ...`) under cProfile, which writes its file when the
        worker exits (a warm shutdown)."""
        out = Path(self.args.profile) / f"{name}.pstats"
        out.parent.mkdir(parents=True, exist_ok=True)
        assert argv[1:3] == ["-m", "celery"], argv
        return [argv[0], "-m", "cProfile", "-o", str(out.resolve()), *argv[1:]]

    def queue_delete(self) -> None:
        """The mode's messages left in the queue (a capped baseline's), and the broker's
        bookkeeping of unacknowledged ones: the next mode starts from an empty queue."""
        support.queue_keys_delete(self.redis, self.queue)
        self.redis.delete("unacked", "unacked_index", "unacked_mutex")

    def delete_new_keys(self) -> None:
        new = set(self.redis.scan_iter(count=1000)) - self._keys_before
        if new:
            self.redis.delete(*new)


def host_limit_create(args: argparse.Namespace) -> None:
    from batchjobs.models import RunLimit

    limit = RunLimit(
        scope="host",
        name=HOST,
        max_running=args.host_limit_running,
        max_per_second=args.host_limit_per_second,
    )
    limit.full_clean()
    limit.save()
    print(f"host limit: {limit}")


# --- figures ------------------------------------------------------------------------------------


def max_in_window(times: list[float], seconds: float = 1.0) -> int:
    """The most of `times` in any window [t, t + seconds)."""
    ordered, best, start = sorted(times), 0, 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


def print_mode(result: ModeResult, args: argparse.Namespace) -> None:
    n, calls = result.n, len(result.calls)
    first = result.first_arrival
    ids = {str(execution.pk) for execution in result.executions}
    arrived = len(ids & first.keys())
    twice = sum(1 for count in Counter(call.key for call in result.calls).values() if count > 1)
    statuses = Counter(execution.status for execution in result.executions)
    not_completed = n - statuses.get("COMPLETED", 0)
    answered = result.answered
    lags = result.lags
    window = result.stopped_at - result.due
    by = f" by the budget ({window:.0f} s after due)" if result.capped else ""
    print(f"  executions fired: {len(result.executions)} of {n}; statuses: {dict(statuses)}")
    print(
        f"  calls: {calls} requests for {arrived} of {n} executions; never arrived{by}: "
        f"{n - arrived}; keys called more than once: {twice}; attempts recorded: "
        f"{result.attempts}"
    )
    print(f"  executions not COMPLETED{by}: {not_completed}")
    print(f"  peak calls in flight (endpoint): {result.peak_in_flight}")
    if result.capped:
        rate = len(answered) / window if window > 0 else NAN
        print(
            f"  drain: EXTRAPOLATED {result.drain:.1f} s ({len(answered)} calls answered in the "
            f"{window:.0f} s budget = {rate:.2f} calls/s; {n} at that rate)"
        )
    else:
        last_call = max(answered) - result.due if answered else NAN
        finished = result.finished
        last_finished = max(finished) - result.due if finished else NAN
        span = max(answered) - min(call.arrived for call in result.calls) if answered else NAN
        print(
            f"  drain: {result.drain:.2f} s (last call answered +{last_call:.2f} s, last "
            f"execution finished +{last_finished:.2f} s); {len(answered) / result.drain:.0f} "
            f"calls/s over the drain, {len(answered) / span:.0f} calls/s first to last call"
        )
    made = " of the calls made" if result.capped else ""
    print(
        f"  fire->request lag{made}: p50 {percentile(lags, 0.5):.3f} s, p99 "
        f"{percentile(lags, 0.99):.3f} s, max {max(lags, default=NAN):.3f} s"
    )
    parts = result.lag_parts()
    if parts:
        spans = ("due->fired by beat", "fired->claimed", "claimed->request")
        print(
            "    of which p50/p99: "
            + "; ".join(
                f"{name} {percentile([p[i + 1] for p in parts], 0.5):.3f}/"
                f"{percentile([p[i + 1] for p in parts], 0.99):.3f} s"
                for i, name in enumerate(spans)
            )
        )
    per_call = 1000 / len(answered) if answered else NAN
    print(
        f"  CPU per call: workers {result.worker_cpu * per_call:.2f} ms "
        f"({result.worker_cpu:.1f} s), their PostgreSQL backends "
        f"{result.backend_cpu * per_call:.2f} ms ({result.backend_cpu:.1f} s)"
    )
    others = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result.other_cpu.items())
    print(
        f"  the workers waited {result.worker_runqueue_wait:.1f} s for a core (runnable, not "
        f"running); CPU of beat and the rest meanwhile: {others}; load average "
        f"{result.load_before} -> {result.load_after}"
    )
    print(
        f"  PostgreSQL sessions, peak: workers {result.peak_worker_sessions}, workers and "
        f"beat {result.peak_sessions}"
    )
    states = result.worker_session_states
    if states:
        total = sum(states.values())
        shares = ", ".join(f"{state} {count / total:.0%}" for state, count in states.most_common(6))
        print(f"    the workers' sessions were (share of samples): {shares}")
    rss = ", ".join(f"{mb:.0f}" for mb in result.worker_rss_mb)
    print(f"  worker peak RSS (main process): {rss} MB")
    if args.host_limit_running or args.host_limit_per_second:
        arrivals = [call.arrived for call in result.calls]
        per_second = max(Counter(int(moment) for moment in arrivals).values(), default=0)
        print(
            f"  host limit ({args.host_limit_running} running, {args.host_limit_per_second}/s): "
            f"max in flight at the endpoint {result.peak_in_flight}; max calls in any 1-s "
            f"window {max_in_window(arrivals)}, in one calendar second {per_second}"
        )


def print_summary(results: dict[str, ModeResult], args: argparse.Namespace) -> None:
    def figure(mode: str, value) -> str:
        return value(results[mode]) if mode in results else "-"

    def capped(r: ModeResult) -> str:
        return "*" if r.capped else ""

    rows = [
        ("drain s", lambda r: f"{r.drain:.2f}" + (" (extrapolated)" if r.capped else "")),
        ("calls/s", lambda r: f"{r.n / r.drain:.1f}"),
        ("peak in flight", lambda r: str(r.peak_in_flight)),
        ("lag p50 s", lambda r: f"{percentile(r.lags, 0.5):.3f}{capped(r)}"),
        ("lag p99 s", lambda r: f"{r.p99:.3f}{capped(r)}"),
        (
            "worker CPU/call ms",
            lambda r: f"{r.worker_cpu * 1000 / max(1, len(r.answered)):.2f}",
        ),
        ("PG sessions (workers)", lambda r: str(r.peak_worker_sessions)),
    ]
    print(f"\n== n={args.n} delay={args.delay:g} s, side by side ==")
    print(f"{'':24}{'lane':>14}  {'prefork (as shipped)':>24}")
    for name, value in rows:
        print(f"{name:24}{figure('lane', value):>14}  {figure('prefork', value):>24}")
    if any(result.capped for result in results.values()):
        print(
            f"* of the calls made by the budget ({args.baseline_budget:g} s): the others waited "
            "longer"
        )
    if "lane" in results and "prefork" in results:
        ratio = results["prefork"].drain / results["lane"].drain
        print(f"prefork drain / lane drain: {ratio:.1f}x")
    lane, prefork = results.get("lane"), results.get("prefork")
    main = lane or prefork
    assert main is not None
    print(
        f"RESULT n={args.n} delay_s={args.delay:g} "
        f"lane_drain_s={lane.drain if lane else NAN:.2f} "
        f"prefork_drain_s={prefork.drain if prefork else NAN:.2f} "
        f"lane_p99_s={lane.p99 if lane else NAN:.3f} "
        f"peak_in_flight={main.peak_in_flight} pg_conns={main.peak_worker_sessions}"
    )


def profile_report(profile_dir: Path, calls: int) -> None:
    """The lane workers' hottest functions (own time), per call. Greenlet switches blur the
    cumulative figures, not the own times."""
    import pstats

    files = [str(path) for path in sorted(profile_dir.glob("lane*.pstats"))]
    if not files or not calls:
        return
    stats = pstats.Stats(*files)
    total = stats.total_tt  # type: ignore[attr-defined]  # set by pstats, not in its stubs
    print(f"  profile of the lane workers: {total * 1000 / calls:.2f} ms per call")
    stats.sort_stats("tottime").print_stats(30)


# --- main ---------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="HTTP jobs due at once (2000)")
    parser.add_argument("--delay", type=float, default=1.0, help="endpoint answer delay, s (1)")
    parser.add_argument(
        "--concurrency", type=int, default=500, help="lane: greenlets per process (500)"
    )
    parser.add_argument("--processes", type=int, default=1, help="lane worker processes (1)")
    parser.add_argument("--only", choices=("lane", "prefork"), help="run one mode only")
    parser.add_argument(
        "--baseline-budget",
        type=float,
        default=60.0,
        help="prefork: stop this many seconds after due and extrapolate the drain (60)",
    )
    parser.add_argument("--host-limit-running", type=int, help="RunLimit on 127.0.0.1: at once")
    parser.add_argument(
        "--host-limit-per-second", type=int, help="RunLimit on 127.0.0.1: calls per second"
    )
    parser.add_argument(
        "--lead", type=float, default=2.0, help="arm the schedules this far ahead, s (2)"
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="fail a mode not drained by then, s (300)"
    )
    parser.add_argument(
        "--job-timeout", type=float, default=60.0, help="the jobs' per-attempt timeout, s (60)"
    )
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment setting of the workers (repeatable), e.g. "
        "BATCHJOBS_LANE_DB_CONNECTIONS=16",
    )
    parser.add_argument(
        "--profile", metavar="DIR", help="run the lane workers under cProfile, files into DIR"
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the process logs")
    parser.add_argument("--keep-database", action="store_true", help="do not drop the database")
    args = parser.parse_args()
    if args.n < 1 or args.concurrency < 1 or args.processes < 1 or args.delay < 0:
        parser.error("--n, --concurrency and --processes must be at least 1, --delay >= 0")
    if any("=" not in setting for setting in args.worker_env):
        parser.error("--worker-env takes NAME=VALUE")
    return args


def main() -> int:
    args = parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    support.exit_on_sigterm()
    config = support.config_or_report("http_jobs", _database_config)
    if config is None:
        return 2
    results = run_bench(args, config)
    if results is None:
        return 1
    print_summary(results, args)
    return 0


def run_bench(args: argparse.Namespace, config: dict) -> dict[str, ModeResult] | None:
    """A fresh database, the endpoint, the modes (lane first), then the database dropped and
    the logs removed (kept with --keep-logs or when the bench failed)."""
    log_dir = Path(tempfile.mkdtemp(prefix="bj_http_bench-logs-"))
    results: dict[str, ModeResult] | None = None
    endpoint = bench = None
    try:
        support.database_recreate(config)
        # The bench's own session, and every process it starts, use the bench database.
        os.environ["DATABASE_URL"] = _database_url(config)
        os.environ["PGAPPNAME"] = "http_bench_main"
        support.django_setup_default()
        endpoint = Endpoint(log_dir)
        bench = Bench(args, log_dir, endpoint)
        print(
            f"http_jobs: n={args.n} delay={args.delay:g} s, lane -c {args.concurrency} x "
            f"{args.processes} process(es), prefork -c {PREFORK_CONCURRENCY} (budget "
            f"{args.baseline_budget:g} s), database {config['NAME']}, cpus={os.cpu_count()}"
        )
        if args.host_limit_running or args.host_limit_per_second:
            host_limit_create(args)
        modes = [args.only] if args.only else ["lane", "prefork"]
        done: dict[str, ModeResult] = {}
        for mode in modes:
            done[mode] = result = run_mode(bench, mode)
            print_mode(result, args)
            if args.profile and mode == "lane":
                profile_report(Path(args.profile), len(result.answered))
        results = done
    except BenchError as exc:
        print(f"http_jobs: {exc}", file=sys.stderr)
    finally:
        if bench is not None:
            bench.delete_new_keys()
        if endpoint is not None:
            endpoint.stop()
        if not args.keep_database:
            support.database_drop_reporting(config, prefix=config["NAME"], bench="http_jobs")
        if args.keep_logs or results is None:
            print(f"process logs: {log_dir}")
        else:
            shutil.rmtree(log_dir, ignore_errors=True)
    return results


if __name__ == "__main__":
    sys.exit(main())
