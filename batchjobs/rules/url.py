"""The one reading of an outbound HTTP URL: what the SSRF guard checks and what the connection
dials are both taken from the `HttpUrl` this module returns, never from a second parse.

Python's urllib.parse and urllib3 (which requests uses to connect) disagree on some spellings:
`http://127.0.0.1:18999\\@127.0.0.1:18801/` is host 127.0.0.1 port 18801 to the first and port
18999 to the second. Anything either parser could read in more than one way is refused here:
backslashes, whitespace and control characters, user information before an `@`, a host or port
that is not plainly spelled, and any URL the two parsers still read differently.
"""

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from django.utils.translation import gettext
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

DEFAULT_PORTS = {"http": 80, "https": 443}
# A host name as DNS spells it (underscores too: container and service names use them), or an
# IPv4 address in any spelling inet_aton reads; IPv6 literals are checked apart.
_HOST_NAME = re.compile(r"^[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_.])?$")
_PORT = re.compile(r"^[0-9]{1,5}$")


class UrlRefused(ValueError):
    """The URL is not one outbound HTTP may call; the message says why."""


@dataclass(frozen=True)
class HttpUrl:
    """An http(s) URL read once: `host` is lower-case ASCII (an IPv6 literal without its
    brackets), `port` is always set, `target` is the path and query sent in the request line."""

    scheme: str
    host: str
    port: int
    target: str

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)

    @property
    def host_header(self) -> str:
        """The Host header: the host (bracketed if IPv6) and the port unless it is the
        scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host_header}{self.target}"

    def __str__(self) -> str:
        return self.url


def http_url_parse(url: str) -> HttpUrl:
    """Read an absolute http(s) URL, or raise UrlRefused naming what is wrong with it."""
    if not isinstance(url, str) or not url:
        raise UrlRefused(gettext("enter an http or https URL"))
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise UrlRefused(gettext("not a valid URL (%(reason)s)") % {"reason": exc}) from exc
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UrlRefused(
            gettext("scheme must be http or https, not %(scheme)s")
            % {"scheme": repr(parts.scheme or "missing")}
        )
    # Checked on the URL as given: urlsplit drops some of these characters before parsing.
    if "\\" in url:
        raise UrlRefused(gettext("the URL contains a backslash, which parsers read differently"))
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise UrlRefused(gettext("the URL contains whitespace or a control character"))
    if not parts.netloc:
        raise UrlRefused(gettext("the URL has no host"))
    if "@" in parts.netloc:
        raise UrlRefused(
            gettext(
                "the URL holds credentials (user@host); send them in a secret Authorization header"
            )
        )
    host, port = _host_and_port(parts.netloc, scheme)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    parsed = HttpUrl(scheme=scheme, host=host, port=port, target=target)
    _same_to_urllib3(url, parsed)
    return parsed


def http_url_join(base: HttpUrl, location: str) -> HttpUrl:
    """The URL a redirect's Location header points to, relative to `base`, read the same way."""
    if "\\" in location:  # before urljoin, which would carry it into the path or the host
        raise UrlRefused(gettext("the URL contains a backslash, which parsers read differently"))
    return http_url_parse(urljoin(base.url, location))


def _host_and_port(netloc: str, scheme: str) -> tuple[str, int]:
    if netloc.startswith("["):
        literal, bracket, rest = netloc[1:].partition("]")
        if not bracket:
            raise UrlRefused(gettext("the IPv6 address has no closing bracket"))
        if "%" in literal:
            raise UrlRefused(gettext("an IPv6 zone (%...) is not accepted in a URL"))
        try:
            host = str(ipaddress.IPv6Address(literal))
        except ValueError as exc:
            raise UrlRefused(
                gettext("%(address)s is not an IPv6 address") % {"address": repr(literal)}
            ) from exc
        if rest and not rest.startswith(":"):
            raise UrlRefused(gettext("unexpected characters after the IPv6 address"))
        port_text = rest[1:] if rest else None
    else:
        if netloc.count(":") > 1:
            raise UrlRefused(
                gettext("an IPv6 address must be written in brackets, e.g. http://[::1]/")
            )
        host, colon, port_text_or_empty = netloc.partition(":")
        port_text = port_text_or_empty if colon else None
        host = _ascii_host(host)
    if port_text is None:
        return host, DEFAULT_PORTS[scheme]
    if not _PORT.match(port_text) or not 1 <= int(port_text) <= 65535:
        raise UrlRefused(
            gettext("the port must be a number from 1 to 65535, not %(port)s")
            % {"port": repr(port_text)}
        )
    return host, int(port_text)


def _ascii_host(host: str) -> str:
    if not host:
        raise UrlRefused(gettext("the URL has no host"))
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise UrlRefused(_invalid_host(host)) from exc
    if not _HOST_NAME.match(ascii_host):
        raise UrlRefused(_invalid_host(host))
    return ascii_host


def _invalid_host(host: str) -> str:
    return gettext("%(host)s is not a valid host name") % {"host": repr(host)}


def _same_to_urllib3(url: str, parsed: HttpUrl) -> None:
    """Refuse what urllib3, which the connection is made with, would read differently."""
    try:
        theirs = parse_url(url)
    except LocationParseError as exc:
        raise UrlRefused(gettext("not a valid URL (%(reason)s)") % {"reason": exc}) from exc
    their_host = (theirs.host or "").strip("[]").lower()
    try:
        their_host = str(ipaddress.IPv6Address(their_host)) if ":" in their_host else their_host
    except ValueError:
        pass
    their_origin = (
        (theirs.scheme or "").lower(),
        their_host,
        theirs.port or DEFAULT_PORTS.get((theirs.scheme or "").lower()),
    )
    if their_origin != parsed.origin:
        raise UrlRefused(gettext("the URL's host or port reads differently to different parsers"))
