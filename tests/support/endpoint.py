"""A local HTTP endpoint that holds thousands of calls in flight cheaply: gevent's WSGI server
in a process of its own (run as `python -m tests.support.endpoint --port P`), one greenlet
per connection. The HTTP-jobs bench points its jobs at it.

    GET|POST /call/<label>/<delay>   answers 200 "ok" after <delay> seconds
    GET /stats/<label>               what the calls of <label> saw, as JSON (CallStats)

Each call is recorded with its arrival and answer times (time.time(), the clock the database's
scheduled_for is compared with on this machine), its Idempotency-Key and X-Batchjobs-Attempt
headers; the server keeps the number of calls of each label in flight and its peak. A label
keeps side-by-side runs apart in one server.

The server side imports only the standard library and gevent, and patches before serving; the
bench side (Endpoint) starts it as a tests.support.processes.Process.
"""

import json
import sys
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

LISTEN_BACKLOG = 4096  # the kernel caps it at net.core.somaxconn
READY_LINE = "endpoint listening"


# --- the server (its own process) ---------------------------------------------------------------


@dataclass
class _Label:
    """The calls of one label: [arrived, answered, key, attempt] each (answered None while in
    flight), the number in flight and its peak."""

    calls: list[list] = field(default_factory=list)
    in_flight: int = 0
    peak_in_flight: int = 0


def _application(labels: dict[str, _Label]):
    import gevent

    def application(environ, start_response):
        parts = environ.get("PATH_INFO", "").strip("/").split("/")
        if len(parts) == 3 and parts[0] == "call":
            return _call(labels[parts[1]], float(parts[2]), environ, start_response)
        if len(parts) == 2 and parts[0] == "stats":
            label = labels.get(parts[1], _Label())
            body = json.dumps(
                {
                    "calls": label.calls,
                    "in_flight": label.in_flight,
                    "peak_in_flight": label.peak_in_flight,
                }
            ).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"unknown path"]

    def _call(label: _Label, delay: float, environ, start_response):
        # Read the body first: a POST's body left unread would break the keep-alive connection.
        environ["wsgi.input"].read()
        call = [
            time.time(),
            None,
            environ.get("HTTP_IDEMPOTENCY_KEY", ""),
            environ.get("HTTP_X_BATCHJOBS_ATTEMPT", ""),
        ]
        label.calls.append(call)
        label.in_flight += 1
        label.peak_in_flight = max(label.peak_in_flight, label.in_flight)
        try:
            if delay > 0:
                gevent.sleep(delay)
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
            return [b"ok"]
        finally:
            # In flight until the answer is handed to the server: a client that went away
            # meanwhile (a timeout) still ends the call here.
            call[1] = time.time()
            label.in_flight -= 1

    return application


def serve(port: int) -> None:
    from gevent import monkey

    monkey.patch_all()
    from gevent.pywsgi import WSGIServer

    labels: dict[str, _Label] = defaultdict(_Label)
    server = WSGIServer(("127.0.0.1", port), _application(labels), log=None, backlog=LISTEN_BACKLOG)
    server.init_socket()
    print(f"{READY_LINE} on 127.0.0.1:{port}", flush=True)
    server.serve_forever()


# --- the bench's side ---------------------------------------------------------------------------


@dataclass
class Call:
    arrived: float
    answered: float | None
    key: str
    attempt: str


@dataclass
class CallStats:
    calls: list[Call]
    in_flight: int
    peak_in_flight: int


class Endpoint:
    """The endpoint in a process of its own, logging under `log_dir`."""

    def __init__(self, log_dir: Path):
        from .processes import Process, free_port

        self.port = free_port()
        self.process = Process(
            f"endpoint-{self.port}",
            [sys.executable, "-m", "tests.support.endpoint", "--port", str(self.port)],
            env={"PYTHONUNBUFFERED": "1", "PATH": "/usr/bin:/bin"},
            log_dir=log_dir,
        )
        self.process.wait_for_log(READY_LINE, 30)

    def url(self, label: str, delay: float) -> str:
        return f"http://127.0.0.1:{self.port}/call/{label}/{delay:g}"

    def stats(self, label: str) -> CallStats:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats/{label}", timeout=60) as r:
            data = json.load(r)
        return CallStats(
            calls=[Call(*call) for call in data["calls"]],
            in_flight=data["in_flight"],
            peak_in_flight=data["peak_in_flight"],
        )

    def stop(self) -> None:
        self.process.stop(5)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="a local endpoint answering after a delay")
    parser.add_argument("--port", type=int, required=True)
    serve(parser.parse_args().port)
