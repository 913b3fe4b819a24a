"""The hardened client never reaches a blocked address, in any spelling, and connects to the
address it checked. Sinks count TCP accepts: a refused call must make none."""

import ipaddress
import socket
import time

import pytest
from pytest_httpserver import HTTPServer

from batchjobs.http.client import http_call
from batchjobs.http.guard import (
    BlockedDestination,
    address_is_public,
    destination_check,
    url_errors,
)
from batchjobs.rules.url import http_url_parse
from tests.support.sockets import AcceptCounter


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
        destination_check(http_url_parse(f"http://{address}/"))


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


# --- one reading of the URL for the check and the connection (issue #11, 7) ------------------


@pytest.fixture
def allowed():
    """A listener on the allow-list; `sink` (another port) is not on it."""
    counter = AcceptCounter()
    yield counter
    counter.close()


def backslash_url(*, dialled: int, checked: int) -> str:
    # urllib.parse reads host 127.0.0.1 port `checked`; urllib3 reads port `dialled`
    return f"http://127.0.0.1:{dialled}\\@127.0.0.1:{checked}/"


def test_a_backslash_url_is_refused_at_save_and_at_call_without_a_connection(
    sink, allowed, settings
):
    # given
    settings.BATCHJOBS_HTTP_ALLOWLIST = [f"127.0.0.1:{allowed.port}"]
    url = backslash_url(dialled=sink.port, checked=allowed.port)

    # then
    assert url_errors(url) == ["the URL contains a backslash, which parsers read differently"]
    with pytest.raises(BlockedDestination, match="backslash"):
        call(url)
    assert (sink.accepts, allowed.accepts) == (0, 0)


@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_to_a_backslash_url_makes_no_connection(status, sink, allowed, settings):
    # given an allow-listed server redirecting to a URL the parsers read differently (a raw
    # socket: an HTTP framework would percent-encode the backslash)
    settings.BATCHJOBS_HTTP_ALLOWLIST = [f"127.0.0.1:{allowed.port}"]
    location = backslash_url(dialled=sink.port, checked=allowed.port)
    allowed.response = (
        f"HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n"
        "Connection: close\r\n\r\n"
    ).encode()

    # then
    with pytest.raises(BlockedDestination, match="redirect to a refused URL: .* backslash"):
        call(f"http://127.0.0.1:{allowed.port}/jump")
    assert (allowed.accepts, sink.accepts) == (1, 0)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:{port} /", "whitespace"),
        ("http://127.0.0.1:{port}\t/", "whitespace"),
        ("http://127.0.0.1:{port}/\x00", "control character"),
        ("http://user@127.0.0.1:{port}/", "credentials"),
        ("http://127.0.0.1:{port}:80/", "IPv6 address must be written in brackets"),
        ("http://127.0.0.1:+{port}/", "port must be a number"),
        ("http://127.0.0.1:0/", "port must be a number"),
        ("http://127.0.0.1:/", "port must be a number"),
        ("http://127.0.0.1%2f:{port}/", "not a valid host name"),
        ("http://[::1]x:{port}/", "after the IPv6 address"),
        ("http://[fe80::1%25lo]:{port}/", "zone"),
    ],
)
def test_urls_read_in_more_than_one_way_are_refused(url, reason, sink, settings):
    settings.BATCHJOBS_HTTP_ALLOWLIST = [f"127.0.0.1:{sink.port}"]
    url = url.format(port=sink.port)
    (error,) = url_errors(url)
    assert reason in error
    with pytest.raises(BlockedDestination, match=reason.split()[0]):
        call(url)
    assert sink.accepts == 0


def test_the_connection_dials_the_checked_port_of_a_plain_url(sink, settings):
    # the reading the check used is what requests is given: host, port and Host header agree
    settings.BATCHJOBS_HTTP_ALLOWLIST = [f"127.0.0.1:{sink.port}"]
    response = call(f"HTTP://127.0.0.1:{sink.port}/a/b?c=d#frag")
    assert (response.status, response.url) == (200, f"http://127.0.0.1:{sink.port}/a/b?c=d")
    assert sink.requests[0].startswith(b"GET /a/b?c=d HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{sink.port}".encode() in sink.requests[0]


# --- IPv6 addresses that embed a blocked IPv4 address ----------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "::127.0.0.1",  # IPv4-compatible (::/96)
        "::ffff:0:7f00:1",  # IPv4-translated (::ffff:0:0:0/96)
        "64:ff9b::7f00:1",  # NAT64 well-known prefix (64:ff9b::/96)
        "64:ff9b::a9fe:a9fe",  # NAT64 of the metadata address 169.254.169.254
        "::10.0.0.1",
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "64:ff9b:1::808:808",  # local-use NAT64 (64:ff9b:1::/48): a site's own translator
    ],
)
def test_ipv6_addresses_embedding_a_blocked_ipv4_address_are_refused(address, settings):
    settings.BATCHJOBS_HTTP_ALLOWLIST = []
    url = f"http://[{address}]:8080/"
    with pytest.raises(BlockedDestination, match="non-public address"):
        destination_check(http_url_parse(url))
    assert url_errors(url)


@pytest.mark.parametrize("address", ["64:ff9b::808:808", "2002:808:808::1", "2606:4700::1111"])
def test_ipv6_addresses_embedding_a_public_ipv4_address_stay_allowed(address):
    assert address_is_public(ipaddress.ip_address(address))


# --- credentials do not follow a redirect to another origin (issue #11, 8) -------------------


@pytest.fixture
def other_server():
    server = HTTPServer(host="127.0.0.1")
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


CREDENTIALS = {"Authorization": "Bearer t0ken", "Cookie": "session=abc", "X-Api-Key": "k3y"}


def call_with_credentials(url: str):
    return http_call(
        method="GET",
        url=url,
        headers={**CREDENTIALS, "Idempotency-Key": "7", "X-Plain": "kept"},
        body=None,
        deadline=time.monotonic() + 3,
        secret_headers=["x-api-key"],
    )


@pytest.mark.parametrize(
    "landing",
    [
        "http://localhost:{port}/landing",  # host changes (same address, same port)
        "http://127.0.0.1:{other_port}/landing",  # port changes
    ],
)
def test_credentials_are_not_sent_after_a_redirect_to_another_origin(
    landing, httpserver, other_server, settings
):
    # given
    settings.BATCHJOBS_HTTP_ALLOWLIST = ["127.0.0.1"]
    landing = landing.format(port=httpserver.port, other_port=other_server.port)
    httpserver.expect_request("/start").respond_with_data(
        "", status=302, headers={"Location": landing}
    )
    for server in (httpserver, other_server):
        server.expect_request("/landing").respond_with_data("landed")

    # when
    response = call_with_credentials(f"http://127.0.0.1:{httpserver.port}/start")

    # then: the first hop had them, the landing none of them, the other headers stay
    assert response.text() == "landed"
    (first, _), *_ = httpserver.log
    (landed, _), *_ = [
        entry for entry in httpserver.log + other_server.log if entry[0].path == "/landing"
    ]
    assert {name: first.headers.get(name) for name in CREDENTIALS} == CREDENTIALS
    assert [name for name in CREDENTIALS if name in landed.headers] == []
    assert (landed.headers["Idempotency-Key"], landed.headers["X-Plain"]) == ("7", "kept")


def test_credentials_stay_dropped_when_a_later_hop_comes_back(httpserver, other_server, settings):
    settings.BATCHJOBS_HTTP_ALLOWLIST = ["127.0.0.1"]
    back = f"http://127.0.0.1:{httpserver.port}/landing"
    httpserver.expect_request("/start").respond_with_data(
        "", status=307, headers={"Location": other_server.url_for("/bounce")}
    )
    other_server.expect_request("/bounce").respond_with_data(
        "", status=307, headers={"Location": back}
    )
    httpserver.expect_request("/landing").respond_with_data("landed")

    call_with_credentials(f"http://127.0.0.1:{httpserver.port}/start")

    ((bounce, _),) = other_server.log
    landed = httpserver.log[-1][0]
    assert [name for name in CREDENTIALS if name in bounce.headers] == []
    assert [name for name in CREDENTIALS if name in landed.headers] == []


def test_credentials_are_sent_on_a_redirect_within_the_origin(httpserver, settings):
    settings.BATCHJOBS_HTTP_ALLOWLIST = ["127.0.0.1"]
    httpserver.expect_request("/start").respond_with_data(
        "", status=302, headers={"Location": "/landing"}
    )
    httpserver.expect_request("/landing").respond_with_data("landed")

    call_with_credentials(f"http://127.0.0.1:{httpserver.port}/start")

    landed = httpserver.log[-1][0]
    assert landed.path == "/landing"
    assert {name: landed.headers.get(name) for name in CREDENTIALS} == CREDENTIALS
