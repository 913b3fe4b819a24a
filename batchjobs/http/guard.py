"""The SSRF guard: which destinations outbound HTTP may reach.

A destination is refused when its host is, or resolves to, an address that is not public
(loopback, private, link-local, CGNAT, unique-local, metadata, and IPv6 addresses that embed
one of those IPv4 addresses) unless BATCHJOBS_HTTP_ALLOWLIST names it. Every resolved address
is checked, and the one returned is the address the client then connects to (client.py pins
it), so a second DNS look-up never happens.
"""

import ipaddress
import socket

from django.conf import settings
from django.utils.translation import gettext

from batchjobs.rules.url import HttpUrl, UrlRefused, http_url_parse

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedDestination(Exception):
    """The URL's host is, or resolves to, an address outbound calls may not reach."""


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
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def destination_check(target: HttpUrl, *, resolve_failure_ok: bool = False) -> IPAddress | None:
    """Raise BlockedDestination unless every address of the URL's host may be called; return
    the address to connect to (None only if resolving failed and that was acceptable)."""
    try:
        addresses = _resolve(target.host, target.port)
    except OSError as exc:
        if resolve_failure_ok:
            return None
        raise BlockedDestination(
            gettext("cannot resolve %(host)s: %(error)s")
            % {"host": repr(target.host), "error": exc}
        ) from exc
    if not addresses:
        raise BlockedDestination(gettext("%(host)s has no address") % {"host": repr(target.host)})
    for ip in addresses:
        if not address_is_public(ip) and not _allowlisted(target.host, target.port, ip):
            raise BlockedDestination(
                gettext(
                    "%(host)s resolves to %(address)s, a non-public address; "
                    "add it to BATCHJOBS_HTTP_ALLOWLIST to allow it"
                )
                % {"host": target.host, "address": ip}
            )
    return addresses[0]


def url_errors(url: str) -> list[str]:
    """Save-time check: syntax and destination. A name that does not resolve yet is accepted
    here and checked again on every call."""
    try:
        target = http_url_parse(url)
        destination_check(target, resolve_failure_ok=True)
    except (UrlRefused, BlockedDestination) as exc:
        return [str(exc)]
    return []
