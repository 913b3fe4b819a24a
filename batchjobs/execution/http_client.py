"""The one outbound HTTP client: every job request goes through `http_call`.

It refuses destinations that are not public (loopback, private, link-local, CGNAT, unique-local,
metadata...) unless BATCHJOBS_HTTP_ALLOWLIST names them, checking every resolved address on every
redirect hop, and then connects to the very address it checked (no second DNS look-up, so no
DNS rebinding, and no parser differential between the check and the connection). It bounds the
whole exchange by a deadline and the body by a size cap.
"""

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

ALLOWED_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
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


def _normalised(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


def address_is_public(ip: IPAddress) -> bool:
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


def url_syntax_errors(url: str) -> list[str]:
    """Problems with the URL itself, without looking anything up."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return [f"not a valid URL ({exc})"]
    if parts.scheme not in ALLOWED_SCHEMES:
        return [f"scheme must be http or https, not {parts.scheme or 'missing'!r}"]
    if not parts.hostname:
        return ["the URL has no host"]
    if any(ch.isspace() for ch in url):
        return ["the URL contains whitespace"]
    if port == 0:
        return ["port 0 is not a valid port"]
    return []


def destination_check(url: str, *, resolve_failure_ok: bool = False) -> IPAddress | None:
    """Raise BlockedDestination unless every address of the URL's host may be called; return
    the address to connect to (None only if resolving failed and that was acceptable)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    try:
        addresses = _resolve(host, port)
    except OSError as exc:
        if resolve_failure_ok:
            return None
        raise BlockedDestination(f"cannot resolve {host!r}: {exc}") from exc
    if not addresses:
        raise BlockedDestination(f"{host!r} has no address")
    for ip in addresses:
        if not address_is_public(ip) and not _allowlisted(host, port, ip):
            raise BlockedDestination(
                f"{host} resolves to {ip}, a non-public address; "
                "add it to BATCHJOBS_HTTP_ALLOWLIST to allow it"
            )
    return addresses[0]


class _PinnedAdapter(HTTPAdapter):
    """Sends the request to `address` (the one destination_check approved) while TLS still
    verifies the certificate against the URL's host name."""

    def __init__(self, address: IPAddress) -> None:
        super().__init__(max_retries=0)
        self.address = str(address)

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = host_params["host"]
            pool_kwargs["assert_hostname"] = host_params["host"]
        host_params["host"] = self.address
        return self.poolmanager.connection_from_host(**host_params, pool_kwargs=pool_kwargs)


def _host_header(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port else host


def url_errors(url: str) -> list[str]:
    """Save-time check: syntax and destination. A name that does not resolve yet is accepted
    here and checked again on every call."""
    errors = url_syntax_errors(url)
    if errors:
        return errors
    try:
        destination_check(url, resolve_failure_ok=True)
    except BlockedDestination as exc:
        return [str(exc)]
    return []


def http_call(
    *,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
    deadline: float,
) -> HttpResponse:
    """Send the request and read the response before `deadline` (a time.monotonic() value).

    Redirects are followed by hand so that each hop is checked; 303 (and 301/302 for POST)
    turn the request into a GET without a body, as browsers do.
    """
    max_bytes = settings.BATCHJOBS_HTTP_MAX_RESPONSE_BYTES
    for hop in range(settings.BATCHJOBS_HTTP_MAX_REDIRECTS + 1):
        errors = url_syntax_errors(url)
        if errors:
            raise BlockedDestination(f"redirect to an invalid URL {url!r}: {errors[0]}")
        address = destination_check(url)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceeded("deadline passed before the request was sent")
        with requests.Session() as session, _send(session, method, url, address, headers, body,
                                                   remaining) as response:  # fmt: skip
            if response.status_code in REDIRECT_STATUSES and "location" in response.headers:
                url = urljoin(url, response.headers["location"])
                if response.status_code == 303 or (
                    response.status_code in (301, 302) and method == "POST"
                ):
                    method, body = "GET", None
                continue
            content = _read_capped(response, max_bytes=max_bytes, deadline=deadline)
            return HttpResponse(status=response.status_code, body=content, url=url, redirects=hop)
    raise BlockedDestination(
        f"more than {settings.BATCHJOBS_HTTP_MAX_REDIRECTS} redirects; last to {url}"
    )


def _send(session, method, url, address, headers, body, remaining) -> requests.Response:
    session.trust_env = False  # an environment proxy would connect around the check
    session.mount(f"{urlsplit(url).scheme}://", _PinnedAdapter(address))
    return session.request(
        method,
        url,
        headers={**headers, "Host": _host_header(url)},
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
