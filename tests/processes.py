"""Real worker and beat processes for integration tests, pointed at the test databases."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.db import connections

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = Path(settings.VAR_DIR) / "test-logs"

# Short enough that a dead worker is noticed within seconds, long enough for a loaded machine.
FAST_RECOVERY_ENV = {
    "BATCHJOBS_HEARTBEAT_SECONDS": "0.5",
    "BATCHJOBS_HEARTBEAT_TIMEOUT_SECONDS": "4",
    "BATCHJOBS_RELAY_AFTER_SECONDS": "10",
    "BATCHJOBS_HOUSEKEEPING_SECONDS": "0.5",
}


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


class Process:
    """A child process whose output goes to a log file under var/test-logs/."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]):
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = LOG_DIR / f"{name}.log"
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

    def wait_for_log(self, text: str, timeout: float = 30.0) -> None:
        give_up = time.monotonic() + timeout
        while text not in self.log():
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log()[-4000:]}")
            if time.monotonic() > give_up:
                raise TimeoutError(f"{self.name} did not log {text!r}:\n{self.log()[-4000:]}")
            time.sleep(0.1)

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
        name,
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-n",
            f"{name}@%h",
            "-Q",
            queues,
            "-c",
            str(concurrency),
            "-l",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "-P",
            "prefork",
        ],
        process_env(**env),
    )
    process.wait_for_log("ready.")
    return process


def start_beat(**env: str) -> Process:
    name = f"beat-{uuid.uuid4().hex[:8]}"
    process = Process(
        name,
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "beat",
            "-l",
            "INFO",
            "-S",
            "batchjobs.scheduling.beat:BatchScheduler",
            "--pidfile=",
        ],
        process_env(**env),
    )
    process.wait_for_log("beat: Starting")
    return process


def queue_purge() -> None:
    """Drop the messages waiting in the default queue (ids of rows a test flushed away)."""
    from config.celery_app import app

    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(settings.CELERY_TASK_DEFAULT_QUEUE)


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
