"""`manage.py quickstart` as `make run` starts it on a fresh machine: SQLite and the embedded
Redis in an empty var dir, web + worker + I/O lane + beat as children, all stopped by one
Ctrl-C."""

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from batchjobs.models import BatchJob, BatchLog, ExecutionStatus
from batchjobs_examples.demo import demo_jobs
from tests.support.processes import ROOT, wait_until

pytestmark = pytest.mark.integration

# What a fresh machine does not have; the quick start must do without.
UNSET_ENV = (
    "DATABASE_URL",
    "WAREHOUSE_DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "BATCHJOBS_HTTP_ALLOWLIST",
    "DJANGO_SUPERUSER_USERNAME",
    "DJANGO_SUPERUSER_PASSWORD",
)
PREFIXES = ("[quickstart] ", "[web] ", "[worker] ", "[lane] ", "[beat] ")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def descendants(pid: int) -> set[int]:
    ps = subprocess.run(["ps", "-A", "-o", "pid=,ppid="], capture_output=True, text=True)
    children: dict[int, list[int]] = {}
    for line in ps.stdout.splitlines():
        child, parent = (int(field) for field in line.split())
        children.setdefault(parent, []).append(child)
    found, pending = set(), [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.add(child)
            pending.append(child)
    return found


def running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    ps = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True)
    state = ps.stdout.strip()
    return bool(state) and not state.startswith("Z")


class Quickstart:
    def __init__(self, var_dir: Path, port: int, *, examples: bool = True):
        self.var_dir, self.port = var_dir, port
        self.base_url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if k not in UNSET_ENV}
        env.update(
            BATCHJOBS_VAR_DIR=str(var_dir),
            DJANGO_SETTINGS_MODULE="config.settings.base",
            # `make run` exports true; false is how a production install runs without them
            BATCHJOBS_EXAMPLES="true" if examples else "false",
            PYTHONUNBUFFERED="1",
        )
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "quickstart", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait(self, timeout: float) -> int:
        code = self.process.wait(timeout)
        self._reader.join(5)  # so that self.lines has the last line too
        return code

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match:
        def matched():
            if self.process.poll() is not None:
                raise AssertionError(f"quickstart exited early:\n{self.output()[-6000:]}")
            return next(filter(None, (re.search(pattern, line) for line in self.lines)), None)

        return wait_until(matched, timeout=timeout, message=f"no {pattern!r}:\n{self.output()}")

    def query(self, sql: str, *params) -> list[tuple]:
        database = self.var_dir / "batchjobs.sqlite3"
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as connection:
            return connection.execute(sql, params).fetchall()

    def first_execution_of(self, job_name: str, *columns: str) -> tuple | None:
        """The status and attempts (and `columns`) of the job's first execution."""
        selected = ", ".join(f"log.{column}" for column in ("status", "attempts", *columns))
        rows = self.query(
            f"SELECT {selected} FROM {BatchLog._meta.db_table} log "
            f"JOIN {BatchJob._meta.db_table} job ON job.id = log.job_id WHERE job.name = ? "
            "ORDER BY log.id LIMIT 1",
            job_name,
        )
        return rows[0] if rows else None


@pytest.fixture
def quickstart(request, tmp_path):
    examples = getattr(request, "param", True)
    started = Quickstart(tmp_path / "var", free_port(), examples=examples)
    yield started
    if started.process.poll() is None:  # the test failed before its Ctrl-C: clean up after it
        leftovers = descendants(started.process.pid)
        started.process.send_signal(signal.SIGINT)
        try:
            started.process.wait(30)
        except subprocess.TimeoutExpired:
            started.process.kill()
        for pid in leftovers:
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def test_quickstart_runs_the_demo_and_stops_cleanly_on_ctrl_c(quickstart):
    # when it has started (about 15 s; the timeouts leave room for a machine busy elsewhere)
    banner = quickstart.wait_for_line(r"batchjobs is running: .*password: (\S+)", timeout=120)
    password = banner.group(1)

    # then web answers, with its static files, and the printed password logs in
    assert requests.get(f"{quickstart.base_url}/healthz", timeout=5).json() == {"status": "ok"}
    browser = requests.Session()
    login_page = browser.get(f"{quickstart.base_url}/admin/login/", timeout=5)
    assert login_page.status_code == 200 and "Log in" in login_page.text
    stylesheet = browser.get(f"{quickstart.base_url}/static/admin/css/base.css", timeout=5)
    assert stylesheet.status_code == 200
    logged_in = browser.post(
        f"{quickstart.base_url}/admin/login/?next=/admin/",
        data={
            "username": "admin",
            "password": password,
            "csrfmiddlewaretoken": browser.cookies["csrftoken"],
        },
        timeout=5,
    )
    assert logged_in.url == f"{quickstart.base_url}/admin/"
    assert 'id="logout-form"' in logged_in.text

    # and the demo jobs ran: the HTTP call against our own web, through the I/O lane; the
    # flaky one after retries
    demo_names = {
        demo.name for demo in demo_jobs(base_url=quickstart.base_url, now=datetime.now(UTC))
    }
    jobs = {name for (name,) in quickstart.query(f"SELECT name FROM {BatchJob._meta.db_table}")}
    assert jobs == demo_names
    completed = ExecutionStatus.COMPLETED.value

    def http_run_completed() -> tuple | None:
        run = quickstart.first_execution_of("demo-http-ping", "worker")
        return run if run and run[0] == completed else None

    http_run = wait_until(
        http_run_completed,
        timeout=30,
        message=f"demo-http-ping did not complete:\n{quickstart.output()}",
    )
    assert http_run[2].startswith("lane@"), http_run
    wait_until(
        lambda: quickstart.first_execution_of("demo-flaky") == (completed, 3),
        timeout=45,
        message=f"demo-flaky did not complete on attempt 3:\n{quickstart.output()}",
    )

    # and every demo job's queue has a running consumer: the worker's, or the lane's
    listed = browser.get(f"{quickstart.base_url}/api/v1/jobs", timeout=5).json()["results"]
    assert {job["name"]: job["queue_consumed"] for job in listed} == dict.fromkeys(demo_names, True)

    # and every output line says which process wrote it
    assert all(line.startswith(PREFIXES) for line in quickstart.lines), quickstart.output()
    for prefix in PREFIXES:
        assert any(line.startswith(prefix) for line in quickstart.lines), prefix

    # when Ctrl-C
    children = descendants(quickstart.process.pid)
    # redis, gunicorn master and workers, celery worker (and its children), lane and beat
    assert len(children) >= 5
    quickstart.process.send_signal(signal.SIGINT)

    # then everything it started is gone and it exits 0
    assert quickstart.wait(30) == 0, quickstart.output()
    assert quickstart.lines[-1] == "[quickstart] stopped"
    wait_until(
        lambda: not any(running(pid) for pid in children),
        timeout=5,
        message=f"still running: {[pid for pid in children if running(pid)]}",
    )


@pytest.mark.parametrize("quickstart", [False], indirect=True, ids=["without-examples"])
def test_quickstart_without_the_examples_runs_with_no_demo(quickstart):
    # when it has started with BATCHJOBS_EXAMPLES=false
    quickstart.wait_for_line(r"batchjobs is running: ", timeout=120)

    # then web answers, with no demo jobs, no demo endpoint and no second database
    assert requests.get(f"{quickstart.base_url}/healthz", timeout=5).json() == {"status": "ok"}
    assert requests.get(f"{quickstart.base_url}/demo/ping", timeout=5).status_code == 404
    assert quickstart.query(f"SELECT name FROM {BatchJob._meta.db_table}") == []
    assert not (quickstart.var_dir / "warehouse.sqlite3").exists()
    assert "migrating database warehouse" not in quickstart.output()
    assert "demo job" not in quickstart.output()  # demo_seed's lines

    # and Ctrl-C stops it cleanly
    quickstart.process.send_signal(signal.SIGINT)
    assert quickstart.wait(30) == 0, quickstart.output()
