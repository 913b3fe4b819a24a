"""Web as the quick start runs it (its gunicorn command line, config/gunicorn.py): a connection
that never sends a request holds no worker."""

import socket
import subprocess
import time
import urllib.request

import pytest

from batchjobs.management.commands.quickstart import _child_commands
from tests.support.processes import ROOT, process_env

pytestmark = pytest.mark.django_db(transaction=True)


def web_command(port: int) -> list[str]:
    return _child_commands(bind=f"127.0.0.1:{port}", lane_concurrency=1)["web"]


def test_the_quick_start_runs_threaded_workers(monkeypatch):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    two = web_command(8000)
    monkeypatch.setenv("WEB_CONCURRENCY", "5")
    five = web_command(8000)

    assert two[two.index("-c") + 1] == "config/gunicorn.py"
    assert two[two.index("--workers") + 1] == "2" and five[five.index("--workers") + 1] == "5"
    settings: dict[str, object] = {}
    exec((ROOT / "config" / "gunicorn.py").read_text(), settings)
    assert settings["worker_class"] == "gthread" and settings["threads"] == 4


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str, *, timeout: float) -> tuple[int, float]:
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, time.monotonic() - started


def test_idle_connections_do_not_hold_the_workers(monkeypatch):
    # given: web as the quick start starts it, with as many idle connections as it has workers
    # and threads together (each would hold a sync worker until its 30 s timeout)
    monkeypatch.setenv("WEB_CONCURRENCY", "2")
    port = free_port()
    web = subprocess.Popen(
        web_command(port), cwd=ROOT, env=process_env(), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    idle: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline or web.poll() is not None:
                    raise
                time.sleep(0.2)
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(2 * 4 + 2)]

        # when
        status, took = get(f"http://127.0.0.1:{port}/healthz", timeout=10)

        # then
        assert status == 200 and took < 2, took
    finally:
        for connection in idle:
            connection.close()
        web.terminate()
        web.wait(timeout=15)
