"""A local HTTP endpoint for fault tests: records every request with its idempotency key and
attempt, and how many attempts of one key were in flight at once."""

import select
import socket
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Seen:
    path: str
    key: str
    attempt: str
    started: float  # time.monotonic()
    finished: float | None = None
    # The wall clock (time.time()) at arrival: the clock backoffs are scheduled by (the
    # database's), which a clock step moves apart from the monotonic one.
    arrived_at: float = field(default_factory=time.time)


class Sink:
    """Paths: /ok, /hang-first (the first request of each key hangs until release()),
    /slow/<seconds>, /fail/<n> (503 for the first n requests of each key), /trickle (a byte a
    second, forever), /huge (200 MB), /loop (redirects to itself)."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        # Requests in flight per key and attempt. Hops of one redirected call share an attempt:
        # the client sends the next hop as soon as it has read a 302, before this server's
        # thread for the previous hop has finished, which is no overlap of two attempts.
        self.in_flight: dict[str, Counter[str]] = defaultdict(Counter)
        self.max_in_flight: dict[str, int] = defaultdict(int)  # attempts at once, at most
        self._lock = threading.Lock()
        self.released = threading.Event()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                sink._handle(self)

            do_POST = do_GET  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def for_key(self, key: str) -> list[Seen]:
        return [seen for seen in self.requests if seen.key == key]

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        key = handler.headers.get("Idempotency-Key", "")
        seen = Seen(handler.path, key, handler.headers.get("X-Batchjobs-Attempt", ""),
                    time.monotonic())  # fmt: skip
        with self._lock:
            earlier = len(self.for_key(key))
            self.requests.append(seen)
            self.in_flight[key][seen.attempt] += 1
            attempts = len(+self.in_flight[key])  # `+` keeps the attempts with a request open
            self.max_in_flight[key] = max(self.max_in_flight[key], attempts)
        try:
            self._respond(handler, handler.path, earlier)
        except OSError:
            pass  # the client went away (a killed worker, a timeout)
        finally:
            with self._lock:
                self.in_flight[key][seen.attempt] -= 1
                seen.finished = time.monotonic()

    def _respond(self, handler, path: str, earlier: int) -> None:
        if path == "/hang-first" and earlier == 0:
            self._hang_until_released_or_gone(handler)
        elif path.startswith("/slow/"):
            time.sleep(float(path.split("/")[2]))
        elif path.startswith("/fail/") and earlier < int(path.split("/")[2]):
            return self._send(handler, 503, b"busy")
        elif path == "/trickle":
            handler.send_response(200)
            handler.send_header("Content-Length", "1000000")
            handler.end_headers()
            for _ in range(600):
                handler.wfile.write(b"x")
                handler.wfile.flush()
                time.sleep(1)
            return None
        elif path == "/huge":
            size = 200 * 1024 * 1024
            handler.send_response(200)
            handler.send_header("Content-Length", str(size))
            handler.end_headers()
            block = b"y" * (1024 * 1024)
            for _ in range(200):
                handler.wfile.write(block)
            return None
        elif path == "/huge-undeclared":
            handler.send_response(200)
            handler.send_header("Connection", "close")
            handler.end_headers()
            block = b"y" * (1024 * 1024)
            for _ in range(200):
                handler.wfile.write(block)
            return None
        elif path == "/loop":
            handler.send_response(302)
            handler.send_header("Location", "/loop")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return None
        return self._send(handler, 200, b"ok")

    def _hang_until_released_or_gone(self, handler) -> None:
        """Hold the request; a client that goes away (a killed worker: the kernel closes its
        socket) ends it, so "in flight" counts connections, not abandoned server work."""
        connection = handler.connection
        deadline = time.monotonic() + 120
        while not self.released.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([connection], [], [], 0.1)
            if readable and not connection.recv(1, socket.MSG_PEEK):
                raise ConnectionResetError("client went away")

    @staticmethod
    def _send(handler, status: int, body: bytes) -> None:
        handler.send_response(status)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
