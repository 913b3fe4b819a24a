"""Plumbing for bench/scheduler.py: the bench database, beat processes, the queue watcher that
timestamps every published message, and lag statistics.

Publish time is measured the same way for both schedulers: a thread takes each message off the
queue's Redis lists (kombu keeps one list per priority step) as soon as it lands and notes the
time. No Celery worker consumes the bench queues, so nothing else takes a message first.
"""

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.support import (
    BenchError,
    cpu_seconds,
    database_config,
    database_drop,
    database_recreate,
    django_setup_default,
    peak_rss_mb,
    percentile,
    process_check_alive,
    queue_keys_delete,
    redis_url_check,
)
from tests.support.processes import Process, beat_command

DATABASE_PREFIX = "bj_sched_bench"
# Every Redis key the bench creates starts with this; cleanup deletes only these.
QUEUE_PREFIX = "bj_sched_bench-"
# kombu's Redis transport names the list of priority step p `<queue>\x06\x16<p>` (p > 0).
PRIORITY_SEPARATOR = "\x06\x16"
POP_BATCH = 1000
BLOCK_SECONDS = 0.2


# --- environment and database ----------------------------------------------------------------


def check_environment() -> dict:
    config = database_config(
        prefix=DATABASE_PREFIX,
        bench="the bench",
        usage="creates it, fills it and drops it",
        postgres_reason=(
            "our beat's wake-up on edit is LISTEN/NOTIFY, and the ceilings are PostgreSQL's"
        ),
    )
    redis_url_check("redis://127.0.0.1:6379/8")
    return config


def create_database(config: dict) -> None:
    """A fresh database each run: one left by an earlier run may hold an older schema."""
    database_recreate(config)
    print(f"created database {config['NAME']}")


def drop_database(config: dict) -> None:
    database_drop(config, prefix=DATABASE_PREFIX)
    print(f"dropped database {config['NAME']}")


def setup_django() -> None:
    django_setup_default()


def delete_bench_keys(client) -> int:
    return queue_keys_delete(client, QUEUE_PREFIX)


def sql_execute(statement: str, params=None) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


# --- beat processes ---------------------------------------------------------------------------


class BeatProcess(Process):
    """`celery beat` in its own session, logging to a file, with its peak RSS and CPU time."""

    def __init__(self, *, label: str, scheduler: str, log_dir: Path, extra_env=None):
        env = dict(os.environ, PYTHONUNBUFFERED="1", DJANGO_DEBUG="false")
        env.setdefault("CELERY_BROKER_URL", env["REDIS_URL"])
        env.update(extra_env or {})
        schedule_file = log_dir / f"{label}-celerybeat-schedule"
        super().__init__(
            label, beat_command(scheduler, "-s", str(schedule_file)), env, log_dir=log_dir
        )
        self.pid = self.popen.pid
        self._log_checked = 0
        self._log_tail = b""
        self._next_log_check = 0.0

    def tail(self, chars: int = 3000) -> str:
        return self.log()[-chars:]

    def check_alive(self) -> None:
        """Fail on a beat that exited or logged a traceback (a failing tick retries forever)."""
        process_check_alive(self)
        now = time.monotonic()
        if now < self._next_log_check:
            return
        self._next_log_check = now + 1.0
        with self.log_path.open("rb") as log:
            log.seek(self._log_checked)
            new = log.read()
        seen = self._log_tail + new
        self._log_checked += len(new)
        self._log_tail = seen[-100:]
        if b"Traceback (most recent call last)" in seen:
            raise BenchError(
                f"beat {self.name} logged an error, see {self.log_path}:\n{self.tail()}"
            )

    def wait_started(self, timeout: float = 90.0) -> float:
        """Wait for celery's start line; return when it appeared (unix time)."""
        give_up = time.monotonic() + timeout
        while "beat: Starting" not in self.log_path.read_text(errors="replace"):
            self.check_alive()
            if time.monotonic() > give_up:
                raise BenchError(f"beat {self.name} did not start in {timeout:.0f}s")
            time.sleep(0.05)
        return time.time()

    def peak_rss_mb(self) -> float:
        return peak_rss_mb(self.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self, timeout: float = 30.0) -> None:
        super().stop(timeout)


# --- the queue watcher ------------------------------------------------------------------------


class QueueWatcher:
    """Takes every message off one queue as soon as it lands and notes the time it arrived.

    A pipelined RPOP of up to POP_BATCH messages per priority list while messages keep coming;
    a blocking BRPOP when the lists are empty, so an idle queue is watched without polling.
    A message popped in a batch was pushed at most one round trip earlier.
    """

    def __init__(self, client, queue: str):
        self._client = client
        self.queue = queue
        self.keys = [queue, *(f"{queue}{PRIORITY_SEPARATOR}{step}" for step in range(1, 10))]
        self.arrivals: list[tuple[float, bytes]] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{queue}", daemon=True)

    def start(self) -> "QueueWatcher":
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                pipe = self._client.pipeline(transaction=False)
                for key in self.keys:
                    pipe.rpop(key, POP_BATCH)
                batches = pipe.execute()
                arrived = time.time()
                popped = [raw for batch in batches if batch for raw in batch]
                if popped:
                    self.arrivals.extend((arrived, raw) for raw in popped)
                    continue
                item = self._client.brpop(self.keys, timeout=BLOCK_SECONDS)
                if item is not None:
                    self.arrivals.append((time.time(), item[1]))
        except BaseException as exc:  # reported by check(), the run fails with it
            self.error = exc

    def check(self) -> None:
        if self.error is not None:
            raise BenchError(f"queue watcher failed: {self.error!r}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(BLOCK_SECONDS * 10 + 5)


def decode_message(raw: bytes) -> tuple[str, list, dict]:
    """(task name, positional args, headers) of a kombu Redis message (Celery protocol 2)."""
    message = json.loads(raw)
    headers = message.get("headers") or {}
    body = message["body"]
    if (message.get("properties") or {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args = json.loads(body)[0]
    return headers.get("task", ""), args, headers


# --- statistics -------------------------------------------------------------------------------


@dataclass
class BurstResult:
    scheduler: str
    n: int
    fired: int
    fires_per_s: float
    p50_s: float
    p99_s: float
    max_s: float
    rss_mb: float
    cpu_s: float
    capped: bool
    duplicates: int

    def result_line(self) -> str:
        return (
            f"RESULT scheduler={self.scheduler} n={self.n} fires_per_s={self.fires_per_s:.1f} "
            f"p50_s={self.p50_s:.3f} p99_s={self.p99_s:.3f} max_s={self.max_s:.3f} "
            f"rss_mb={self.rss_mb:.1f} fired={self.fired}"
        )


@dataclass
class LagResult:
    """Idle fire lag or edit latency: a handful of timed events."""

    scheduler: str
    what: str
    values: list[float]
    expected: int

    @property
    def p50(self) -> float:
        return percentile(self.values, 0.50)

    @property
    def p99(self) -> float:
        return percentile(self.values, 0.99)

    @property
    def max(self) -> float:
        return max(self.values) if self.values else float("nan")


# --- profiling the beat process (--py-spy) ----------------------------------------------------


class PySpyRecorder:
    """`py-spy record` attached to a running beat, sampling waits too (--idle), so that time
    spent waiting on PostgreSQL and Redis shows beside Python time. It ends when beat exits."""

    def __init__(self, pid: int, out_path: Path, rate: int = 250):
        self.out_path = out_path
        executable = Path(sys.executable).with_name("py-spy")
        if not executable.exists():
            raise BenchError(f"--py-spy needs {executable}: pip install py-spy into the venv")
        self._log = out_path.with_suffix(".log").open("w")
        self.popen = subprocess.Popen(
            [
                str(executable),
                "record",
                "--pid",
                str(pid),
                "--idle",
                "--nonblocking",
                "--rate",
                str(rate),
                "--format",
                "raw",
                "--output",
                str(out_path),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def finish(self, timeout: float = 30.0) -> None:
        """Call after beat has stopped: py-spy writes its file when its target exits."""
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.send_signal(signal.SIGINT)  # py-spy writes what it has on Ctrl-C
            self.popen.wait(10)
        self._log.close()


def _frame_name(frame: str) -> str:
    """'apply_async (celery/app/task.py:601)' -> 'apply_async (celery/app/task.py)'."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})" if path else name


def _is_function(name: str, function: str) -> bool:
    """'BatchScheduler._fire_due (path)' is `_fire_due`; so is '_fire_due (path)'."""
    qualified = name.split(" (", 1)[0]
    return qualified == function or qualified.endswith("." + function)


def pyspy_report(path: Path, *, focus: str, fires: int, rate: int = 250, top: int = 30) -> None:
    """Where beat's time went inside stacks that pass through `focus` (e.g. `_fire_due`):
    inclusive and self samples per function, as ms of wall time per fire."""
    from collections import Counter

    if not path.exists():
        print(f"  no py-spy output at {path}")
        return
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    focused = total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        names = [_frame_name(frame) for frame in frames]
        at = next((index for index, name in enumerate(names) if _is_function(name, focus)), None)
        if at is None:
            continue
        focused += count
        for name in set(names[at:]):
            inclusive[name] += count
        leaf[names[-1]] += count
    if not focused:
        print(f"  py-spy: no samples inside {focus}")
        return
    per_fire_ms = 1000.0 / rate / max(fires, 1)
    print(
        f"  py-spy {path.name}: {focused} of {total} samples inside {focus} = "
        f"{focused / rate:.2f} s wall, {focused * per_fire_ms:.3f} ms per fire ({fires} fires)"
    )
    print("  inclusive (share of the firing time, ms per fire):")
    for name, count in inclusive.most_common(top):
        print(f"    {count / focused:6.1%} {count * per_fire_ms:8.4f}  {name}")
    print("  self, leaf frames (what the process was doing):")
    for name, count in leaf.most_common(top // 2):
        print(f"    {count / focused:6.1%} {count * per_fire_ms:8.4f}  {name}")
