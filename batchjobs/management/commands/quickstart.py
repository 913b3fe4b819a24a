"""`manage.py quickstart`: the whole system on one machine in one command (what `make run` runs).

Starts the embedded Redis when the broker is the embedded one (no REDIS_URL), migrates the
databases, creates the admin user and, when the examples app is installed (BATCHJOBS_EXAMPLES,
which `make run` turns on), the demo jobs, then runs web (gunicorn), a worker (prefork: handlers
and batch jobs), the I/O lane (a gevent worker: HTTP jobs and notifications, hundreds of calls in
flight) and beat as child processes with their output prefixed, until Ctrl-C or SIGTERM stops
them all.
"""

import functools
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import IO

from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from batchjobs.embedded_redis import embedded_redis_start
from batchjobs.services.accounts import admin_user_ensure

START_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.2
QUICKSTART_PREFIX = "[quickstart]"
# When installed, its demo jobs are seeded (demo_seed is its command) and its database migrated.
EXAMPLES_APP = "batchjobs_examples"
CHILDREN = ["web", "worker", "lane", "beat"]
# Calls in flight in the I/O lane's one process (greenlets; the database connections they
# share are bounded apart, by BATCHJOBS_LANE_DB_CONNECTIONS).
LANE_CONCURRENCY = int(os.environ.get("BATCHJOBS_LANE_CONCURRENCY", "500"))


class Supervisor:
    """Child processes whose output lines are prefixed with their name, stopped together."""

    def __init__(self, *, env: dict[str, str], names: list[str]):
        self.env = env
        self.processes: dict[str, subprocess.Popen] = {}
        self._readers: list[threading.Thread] = []
        self._print_lock = threading.Lock()
        self._prefix_width = max(len(name) for name in names) + 2

    def say(self, message: str, *, prefix: str = QUICKSTART_PREFIX) -> None:
        with self._print_lock:
            try:
                print(f"{prefix} {message}", flush=True)
            except BrokenPipeError:
                # Whoever read our output is gone (`make run | tee` loses tee to the same
                # Ctrl-C): carry on silently, since stopping the children matters more.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

    def start(self, name: str, args: list[str], *, ready_text: str = "") -> threading.Event:
        """Start a child; the returned event is set when it prints a line with `ready_text`."""
        # A process group of its own: a Ctrl-C in the terminal reaches only us, so each child
        # gets exactly one SIGTERM, and a child that ignores it can be killed with its workers.
        process = subprocess.Popen(
            args,
            cwd=settings.BASE_DIR,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            process_group=0,
        )
        self.processes[name] = process
        if process.stdout is None:  # never with stdout=PIPE: Popen's type cannot say so
            raise RuntimeError(f"{name} started without its output pipe")
        prefix = f"[{name}]".ljust(self._prefix_width)
        ready = threading.Event()
        reader = threading.Thread(
            target=self._relay_output,
            args=(process.stdout, prefix, ready_text, ready),
            name=f"output-{name}",
            daemon=True,
        )
        reader.start()
        self._readers.append(reader)
        return ready

    def _relay_output(
        self, output: IO[str], prefix: str, ready_text: str, ready: threading.Event
    ) -> None:
        for line in output:
            self.say(line.rstrip("\n"), prefix=prefix)
            if ready_text and ready_text in line:
                ready.set()

    def first_exited(self) -> tuple[str, int] | None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                return name, process.returncode
        return None

    def stop_all(self, *, timeout: float, force: threading.Event) -> None:
        """SIGTERM every running child, wait up to `timeout` (or until `force` is set), then
        SIGKILL the process group of any child still running."""
        running = {name: p for name, p in self.processes.items() if p.poll() is None}
        for process in running.values():
            process.send_signal(signal.SIGTERM)
        give_up = time.monotonic() + timeout
        for name, process in running.items():
            while process.poll() is None and time.monotonic() < give_up and not force.is_set():
                time.sleep(0.1)
            if process.poll() is None:
                self.say(f"{name} did not stop; killing it")
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for reader in self._readers:
            reader.join(timeout=5)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _port_is_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _child_commands(*, bind: str, lane_concurrency: int) -> dict[str, list[str]]:
    python = sys.executable
    # Two processes (of gunicorn.py's threads) unless WEB_CONCURRENCY says otherwise, as it
    # does for gunicorn elsewhere.
    web_workers = os.environ.get("WEB_CONCURRENCY", "2")
    celery_worker = [python, *"-m celery -A config worker -l INFO".split()]
    # No neighbours to synchronise with or to gossip to; each worker names its queue, so that
    # HTTP jobs go to the lane alone.
    quiet = ["--without-mingle", "--without-gossip"]
    return {
        "web": [
            python,
            *"-m gunicorn -c config/gunicorn.py --graceful-timeout 5".split(),
            *["--workers", web_workers, "--bind", bind],
        ],
        "worker": [
            *celery_worker,
            *quiet,
            "-n",
            "worker@%h",
            "-Q",
            settings.CELERY_TASK_DEFAULT_QUEUE,
        ],
        "lane": [
            *celery_worker,
            *quiet,
            "-n",
            "lane@%h",
            "-P",
            "gevent",
            "-c",
            str(lane_concurrency),
            "-Q",
            settings.BATCHJOBS_HTTP_QUEUE,
        ],
        "beat": [
            python,
            *"-m celery -A config beat -l INFO --pidfile=".split(),
            *"-S batchjobs.scheduling.beat:BatchScheduler".split(),
        ],
    }


class Command(BaseCommand):
    help = (
        "Run batchjobs on this machine: embedded Redis (unless REDIS_URL is set), migrations, "
        "admin user, demo jobs, then web, worker, I/O lane and beat until Ctrl-C."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Web bind address.")
        parser.add_argument("--port", type=int, default=8000, help="Web port.")
        parser.add_argument(
            "--lane-concurrency",
            type=int,
            default=LANE_CONCURRENCY,
            help="HTTP calls in flight in the I/O lane (gevent -c; BATCHJOBS_LANE_CONCURRENCY).",
        )
        parser.add_argument(
            "--stop-timeout",
            type=float,
            default=10.0,
            help="Seconds a child may take to stop after SIGTERM before it is killed.",
        )

    def handle(
        self,
        *args,
        host: str,
        port: int,
        lane_concurrency: int,
        stop_timeout: float,
        **options,
    ) -> None:
        stop_requested, force_stop = threading.Event(), threading.Event()

        def on_signal(signum, frame) -> None:
            if stop_requested.is_set():  # a second Ctrl-C: stop waiting for graceful exits
                force_stop.set()
            stop_requested.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)

        if not _port_is_free(host, port):
            raise CommandError(
                f"{_url_host(host)}:{port} is in use (another quickstart?); choose --port."
            )
        connect_host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        base_url = f"http://{_url_host(connect_host)}:{port}"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # Outbound calls to loopback are refused unless allow-listed: open only our own demo
        # endpoint, and only when the operator has not chosen an allowlist.
        env.setdefault("BATCHJOBS_HTTP_ALLOWLIST", f"{_url_host(connect_host)}:{port}")
        supervisor = Supervisor(env=env, names=CHILDREN)

        redis_process = None
        if settings.CELERY_BROKER_URL == f"redis+socket://{settings.EMBEDDED_REDIS_SOCKET}":
            redis_process = embedded_redis_start(settings.EMBEDDED_REDIS_SOCKET)
            already = "" if redis_process else " (already running, left running at exit)"
            supervisor.say(f"embedded redis on {settings.EMBEDDED_REDIS_SOCKET}{already}")
        try:
            admin_line = self._prepare(supervisor, base_url=base_url, stop=stop_requested)
            connections.close_all()  # from here on this process only supervises
            if not stop_requested.is_set():
                self._serve(
                    supervisor,
                    commands=_child_commands(
                        bind=f"{_url_host(host)}:{port}", lane_concurrency=lane_concurrency
                    ),
                    base_url=base_url,
                    admin_line=admin_line,
                    stop=stop_requested,
                )
        finally:
            if supervisor.processes:
                supervisor.say(f"stopping {', '.join(supervisor.processes)}")
            supervisor.stop_all(timeout=stop_timeout, force=force_stop)
            if redis_process is not None:
                redis_process.terminate()
                redis_process.wait(10)
        supervisor.say("stopped")

    def _prepare(self, supervisor: Supervisor, *, base_url: str, stop: threading.Event) -> str:
        """Migrations, static files, admin user and demo jobs. Returns the admin login line."""
        examples = apps.is_installed(EXAMPLES_APP)
        # Another alias is the operator's database (the sql handler's), never migrated; the
        # examples keep a table on theirs, `warehouse`.
        for alias in ["default", "warehouse"] if examples else ["default"]:
            supervisor.say(f"migrating database {alias}")
            call_command(
                "migrate", database=alias, interactive=False, verbosity=0, skip_checks=False
            )
            if stop.is_set():
                return ""
        call_command("collectstatic", interactive=False, verbosity=0)

        username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "admin")
        given_password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        password = given_password or secrets.token_urlsafe(12)
        created = admin_user_ensure(
            username=username,
            password=password,
            email=os.environ.get("DJANGO_SUPERUSER_EMAIL", ""),
        )
        if not created:
            admin_line = f"{username} (`manage.py changepassword {username}` resets its password)"
        elif given_password:
            admin_line = f"{username}, password from DJANGO_SUPERUSER_PASSWORD"
        else:
            admin_line = f"{username}, password: {password} (shown this once)"

        if not examples:
            return admin_line
        # In a child with the children's environment, so that the HTTP demo job is checked
        # against the same allowlist the worker will apply.
        seed = subprocess.run(
            [sys.executable, "manage.py", "demo_seed", "--base-url", base_url],
            cwd=settings.BASE_DIR,
            env=supervisor.env,
            capture_output=True,
            text=True,
            process_group=0,
        )
        for line in (seed.stdout + seed.stderr).splitlines():
            supervisor.say(line)
        if seed.returncode != 0:
            raise CommandError(f"demo_seed failed with exit code {seed.returncode}")
        return admin_line

    def _serve(
        self,
        supervisor: Supervisor,
        *,
        commands: dict[str, list[str]],
        base_url: str,
        admin_line: str,
        stop: threading.Event,
    ) -> None:
        supervisor.start("web", commands["web"])
        # The workers start once web answers, so the demo HTTP job's first attempt succeeds.
        web_answers = functools.partial(_web_answers, base_url)
        if not _wait_until(web_answers, supervisor, stop=stop, what="web to answer /healthz"):
            return
        worker_ready = supervisor.start("worker", commands["worker"], ready_text=" ready.")
        lane_ready = supervisor.start("lane", commands["lane"], ready_text=" ready.")
        supervisor.start("beat", commands["beat"])
        for what, ready in [("the worker", worker_ready), ("the I/O lane", lane_ready)]:
            if not _wait_until(ready.is_set, supervisor, stop=stop, what=what):
                return
        supervisor.say(f"batchjobs is running: {base_url}/admin/ user {admin_line}")
        supervisor.say(f"Ctrl-C stops {', '.join(CHILDREN)}.")
        while not stop.wait(POLL_SECONDS):
            exited = supervisor.first_exited()
            if exited:
                name, code = exited
                supervisor.say(f"{name} exited with code {code}; stopping the others")
                raise CommandError(f"{name} exited with code {code}")


def _web_answers(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/healthz", timeout=2):
            return True
    except urllib.error.HTTPError as exc:
        raise CommandError(
            f"web answers {base_url}/healthz with HTTP {exc.code}; if it is 400, add the host "
            "to DJANGO_ALLOWED_HOSTS"
        ) from exc
    except OSError:  # not listening yet
        return False


def _wait_until(
    condition: Callable[[], bool], supervisor: Supervisor, *, stop: threading.Event, what: str
) -> bool:
    """True once `condition()` holds; False if a stop was requested first. Fails if a child
    exits or START_TIMEOUT_SECONDS pass."""
    give_up = time.monotonic() + START_TIMEOUT_SECONDS
    while not stop.wait(POLL_SECONDS):
        exited = supervisor.first_exited()
        if exited:
            raise CommandError(f"{exited[0]} exited with code {exited[1]} while waiting for {what}")
        if condition():
            return True
        if time.monotonic() > give_up:
            raise CommandError(f"gave up waiting for {what} after {START_TIMEOUT_SECONDS:g}s")
    return False
