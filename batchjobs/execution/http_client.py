"""The one outbound HTTP client: every job request goes through `http_call`.

It refuses destinations that are not public (loopback, private, link-local, CGNAT, unique-local,
metadata, and IPv6 addresses that embed one of those IPv4 addresses) unless
BATCHJOBS_HTTP_ALLOWLIST names them, checking every resolved address on every redirect hop, and
then connects to the very address and port it checked: the URL is read once
(batchjobs.rules.url), the check and the connection both use that reading, and the connection
refuses to go anywhere else (no second DNS look-up, so no DNS rebinding, and no parser
differential). Secret headers are dropped once a redirect leaves the original origin. It bounds
the whole exchange by a deadline and the body by a size cap.
"""

import ipaddress
import socket
import time
from collections.abc import Collection
from dataclasses import dataclass

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from batchjobs.rules.url import DEFAULT_PORTS, HttpUrl, UrlRefused, http_url_join, http_url_parse

REDIRECT_STATUSES = (301, 302, 303, 307, 308)
READ_CHUNK_BYTES = 64 * 1024

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedDestination(Exception):
    """The URL's host is, or resolves to, an address outbound calls may not reach."""


class ResponseTooLarge(Exception):
    """The response body passed BATCHJOBS_HTTP_MAX_RESPONSE_BYTES."""


class DeadlineExceeded(Exception):
    """The exchange did not finish before its deadline."""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes
    url: str
    redirects: int

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


# IPv6 prefixes whose last 32 bits are an IPv4 address that the traffic ends up at (or, for
# 6to4, bits 16-47): judged by that IPv4 address. RFC 4291 §2.5.5 (mapped, compatible),
# RFC 2765 (translated), RFC 6052 (NAT64), RFC 3056 (6to4).
_IPV4_IN_LAST_32_BITS = tuple(
    ipaddress.IPv6Network(prefix)
    for prefix in ("::ffff:0:0/96", "::/96", "::ffff:0:0:0/96", "64:ff9b::/96")
)
# RFC 8215's local-use NAT64 prefix: a site's own translator, by definition not public.
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if any(ip in network for network in _IPV4_IN_LAST_32_BITS):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def _normalised(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address stands for, or the address itself."""
    return _embedded_ipv4(ip) or ip


def address_is_public(ip: IPAddress) -> bool:
    if ip in _LOCAL_NAT64:
        return False
    ip = _normalised(ip)
    return ip.is_global and not ip.is_multicast


def _allowlisted(host: str, port: int, ip: IPAddress) -> bool:
    ip = _normalised(ip)
    for entry in settings.BATCHJOBS_HTTP_ALLOWLIST:
        entry_host, entry_port = _split_allow_entry(entry)
        if entry_port is not None and entry_port != port:
            continue
        if entry_host.lower() == host.lower():
            return True
        try:
            if ip in ipaddress.ip_network(entry_host, strict=False):
                return True
        except ValueError:
            continue
    return False


def _split_allow_entry(entry: str) -> tuple[str, int | None]:
    entry = entry.strip()
    if entry.startswith("["):  # [v6]:port
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else None
    if entry.count(":") == 1:
        host, port = entry.split(":")
        return host, int(port)
    return entry, None


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def destination_check(target: HttpUrl, *, resolve_failure_ok: bool = False) -> IPAddress | None:
    """Raise BlockedDestination unless every address of the URL's host may be called; return
    the address to connect to (None only if resolving failed and that was acceptable)."""
    try:
        addresses = _resolve(target.host, target.port)
    except OSError as exc:
        if resolve_failure_ok:
            return None
        raise BlockedDestination(f"cannot resolve {target.host!r}: {exc}") from exc
    if not addresses:
        raise BlockedDestination(f"{target.host!r} has no address")
    for ip in addresses:
        if not address_is_public(ip) and not _allowlisted(target.host, target.port, ip):
            raise BlockedDestination(
                f"{target.host} resolves to {ip}, a non-public address; "
                "add it to BATCHJOBS_HTTP_ALLOWLIST to allow it"
            )
    return addresses[0]


class _PinnedAdapter(HTTPAdapter):
    """Sends the request to `address` (the one destination_check approved) on the port that was
    checked, while TLS still verifies the certificate against the URL's host name. A request
    whose URL requests reads as another scheme, host or port is refused, not sent."""

    def __init__(self, target: HttpUrl, address: IPAddress) -> None:
        super().__init__(max_retries=0)
        self.target = target
        self.address = str(address)

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        scheme = host_params["scheme"]
        dialled = (scheme, host_params["host"], host_params["port"] or DEFAULT_PORTS.get(scheme))
        if dialled != self.target.origin:
            raise BlockedDestination(
                f"the request would go to {dialled}, not to the checked {self.target.origin}"
            )
        if scheme == "https":
            pool_kwargs["server_hostname"] = host_params["host"]
            pool_kwargs["assert_hostname"] = host_params["host"]
        host_params["host"] = self.address
        return self.poolmanager.connection_from_host(**host_params, pool_kwargs=pool_kwargs)


def url_errors(url: str) -> list[str]:
    """Save-time check: syntax and destination. A name that does not resolve yet is accepted
    here and checked again on every call."""
    try:
        target = http_url_parse(url)
        destination_check(target, resolve_failure_ok=True)
    except (UrlRefused, BlockedDestination) as exc:
        return [str(exc)]
    return []


# Sent only to the origin the request was made for (as browsers and requests do): a redirect
# elsewhere must not carry credentials along.
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


def headers_for_another_origin(
    headers: dict[str, str], *, secret_headers: Collection[str]
) -> dict[str, str]:
    """The headers without credentials: those named in `secret_headers` and CREDENTIAL_HEADERS."""
    dropped = CREDENTIAL_HEADERS | {name.lower() for name in secret_headers}
    return {name: value for name, value in headers.items() if name.lower() not in dropped}


def http_call(
    *,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
    deadline: float,
    secret_headers: Collection[str] = (),
) -> HttpResponse:
    """Send the request and read the response before `deadline` (a time.monotonic() value).

    Redirects are followed by hand so that each hop is checked; 303 (and 301/302 for POST)
    turn the request into a GET without a body, as browsers do. From the first hop to another
    scheme, host or port on, the headers named in `secret_headers` and the credential headers
    are no longer sent (even if a later hop comes back).
    """
    max_bytes = settings.BATCHJOBS_HTTP_MAX_RESPONSE_BYTES
    try:
        target = http_url_parse(url)
    except UrlRefused as exc:
        raise BlockedDestination(str(exc)) from exc
    origin = target.origin
    for hop in range(settings.BATCHJOBS_HTTP_MAX_REDIRECTS + 1):
        address = destination_check(target)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceeded("deadline passed before the request was sent")
        with requests.Session() as session, _send(session, method, target, address, headers, body,
                                                   remaining) as response:  # fmt: skip
            if response.status_code in REDIRECT_STATUSES and "location" in response.headers:
                try:
                    target = http_url_join(target, response.headers["location"])
                except UrlRefused as exc:
                    raise BlockedDestination(f"redirect to a refused URL: {exc}") from exc
                if target.origin != origin:
                    headers = headers_for_another_origin(headers, secret_headers=secret_headers)
                if response.status_code == 303 or (
                    response.status_code in (301, 302) and method == "POST"
                ):
                    method, body = "GET", None
                continue
            content = _read_capped(response, max_bytes=max_bytes, deadline=deadline)
            return HttpResponse(
                status=response.status_code, body=content, url=target.url, redirects=hop
            )
    raise BlockedDestination(
        f"more than {settings.BATCHJOBS_HTTP_MAX_REDIRECTS} redirects; last to {target.url}"
    )


def _send(session, method, target: HttpUrl, address, headers, body, remaining) -> requests.Response:
    session.trust_env = False  # an environment proxy would connect around the check
    session.mount(f"{target.scheme}://", _PinnedAdapter(target, address))
    return session.request(
        method,
        target.url,
        headers={**headers, "Host": target.host_header},
        data=body,
        timeout=(min(remaining, 10.0), remaining),
        allow_redirects=False,
        stream=True,
    )


def _read_capped(response: requests.Response, *, max_bytes: int, deadline: float) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise ResponseTooLarge(f"response declares {declared} bytes, over the {max_bytes} cap")
    chunks, size = [], 0
    for chunk in response.iter_content(READ_CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            raise ResponseTooLarge(f"response is over the {max_bytes} byte cap")
        if time.monotonic() > deadline:
            raise DeadlineExceeded("the response was still arriving at the deadline")
        chunks.append(chunk)
    return b"".join(chunks)
