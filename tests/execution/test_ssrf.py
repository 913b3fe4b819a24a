"""The hardened client never reaches a blocked address, in any spelling, and connects to the
address it checked. Sinks count TCP accepts: a refused call must make none."""

import socket
import threading
import time

import pytest

from batchjobs.execution.http_client import (
    BlockedDestination,
    destination_check,
    http_call,
    url_errors,
)


class AcceptCounter:
    """A TCP listener that counts connections and answers each with a tiny HTTP response."""

    def __init__(self, host: str = "127.0.0.1", family=socket.AF_INET):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepts = 0
        self.requests: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepts += 1
            with conn:
                conn.settimeout(2)
                try:
                    self.requests.append(conn.recv(65536))
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    )
                except OSError:
                    pass

    def close(self):
        self.sock.close()


@pytest.fixture
def sink():
    counter = AcceptCounter()
    yield counter
    counter.close()


def call(url: str):
    return http_call(method="GET", url=url, headers={}, body=None, deadline=time.monotonic() + 3)


SPELLINGS = [
    "http://127.0.0.1:{port}/",
    "http://127.1:{port}/",
    "http://2130706433:{port}/",  # decimal
    "http://0x7f000001:{port}/",  # hex
    "http://0x7f.0.0.1:{port}/",
    "http://017700000001:{port}/",  # octal
    "http://0177.0.0.1:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",  # IPv4-mapped IPv6
    "http://[::ffff:7f00:1]:{port}/",
    "http://user:pass@127.0.0.1:{port}/",  # userinfo
    "http://example.com@127.0.0.1:{port}/",
    "http://localhost:{port}/",
    "http://0.0.0.0:{port}/",
    "HTTP://127.0.0.1:{port}/",
]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_loopback_in_any_spelling_is_refused_without_a_connection(spelling, sink, settings):
    settings.BATCHJOBS_HTTP_ALLOWLIST = []
    url = spelling.format(port=sink.port)
    with pytest.raises(BlockedDestination):
        call(url)
    assert url_errors(url), f"{url} was accepted at save time"
    assert sink.accepts == 0


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1", "172.16.5.4", "192.168.1.1",  # private
        "169.254.169.254", "[fd00:ec2::254]",  # cloud metadata
        "100.64.0.1", "100.100.100.200",  # CGNAT (and a metadata address inside it)
        "[fc00::1]", "[fe80::1]", "[::1]", "0.0.0.0", "224.0.0.1", "240.0.0.1",
        "[::ffff:10.0.0.1]", "[::ffff:169.254.169.254]",
    ],
)  # fmt: skip
def test_non_public_addresses_are_refused_before_any_packet(address, settings):
    # Refused by the check itself: nothing is ever sent to these addresses.
    settings.BATCHJOBS_HTTP_ALLOWLIST = []
    with pytest.raises(BlockedDestination):
        destination_check(f"http://{address}/")


@pytest.mark.parametrize("url", ["ftp://example.com/", "file:///etc/passwd", "gopher://x/",
                                 "javascript:alert(1)", "http:///nohost"])  # fmt: skip
def test_only_http_and_https_with_a_host(url):
    assert url_errors(url)


def test_a_redirect_to_a_blocked_address_makes_no_connection_there(httpserver, settings):
    blocked = AcceptCounter()
    try:
        settings.BATCHJOBS_HTTP_ALLOWLIST = [f"127.0.0.1:{httpserver.port}"]
        httpserver.expect_request("/jump").respond_with_data(
            "", status=302, headers={"Location": f"http://127.0.0.1:{blocked.port}/inside"}
        )
        with pytest.raises(BlockedDestination):
            call(httpserver.url_for("/jump"))
        assert blocked.accepts == 0
    finally:
        blocked.close()


def test_the_allow_list_opens_exactly_what_it_names(sink, settings):
    other = AcceptCounter()
    try:
        settings.BATCHJOBS_HTTP_ALLOWLIST = [f"127.0.0.1:{sink.port}"]
        assert call(f"http://127.0.0.1:{sink.port}/").status == 200
        with pytest.raises(BlockedDestination):
            call(f"http://127.0.0.1:{other.port}/")
        assert (sink.accepts, other.accepts) == (1, 0)
    finally:
        other.close()


def test_the_connection_goes_to_the_checked_address_not_a_rebound_one(sink, settings, monkeypatch):
    # given a name that resolves to the sink when checked, then to another address (rebinding)
    settings.BATCHJOBS_HTTP_ALLOWLIST = [f"rebind.test:{sink.port}"]
    elsewhere = AcceptCounter()
    answers = iter(["127.0.0.1", "127.0.0.2"])
    real_getaddrinfo = socket.getaddrinfo

    def rebinding_dns(host, port, *args, **kwargs):  # DNS is outside this machine: faked
        if host == "rebind.test":
            return real_getaddrinfo(next(answers, "127.0.0.2"), port, *args, **kwargs)
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
    try:
        response = call(f"http://rebind.test:{sink.port}/path")
    finally:
        elsewhere.close()
    # then the request reached the checked address, with the name in its Host header
    assert response.status == 200
    assert sink.accepts == 1
    assert b"Host: rebind.test:" in sink.requests[0]
