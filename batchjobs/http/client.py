"""The one outbound HTTP client: every job, batch and notification request goes through
`http_call`.

Each hop's URL is read once (batchjobs.rules.url); guard.py checks every address its host
resolves to, and the connection goes to the very address and port that were checked and nowhere
else (no second DNS look-up, so no DNS rebinding, and no parser differential). Redirects are
followed by hand, each hop checked again; secret headers are dropped once a redirect leaves the
original origin. The whole exchange is bounded by a deadline and the body by a size cap.
"""

import time
from collections.abc import Collection
from dataclasses import dataclass

import requests
from django.conf import settings
from django.utils.translation import gettext
from requests.adapters import HTTPAdapter

from batchjobs.rules.masking import text_url_masked
from batchjobs.rules.url import DEFAULT_PORTS, HttpUrl, UrlRefused, http_url_join, http_url_parse

from .guard import BlockedDestination, IPAddress, destination_check

REDIRECT_STATUSES = (301, 302, 303, 307, 308)
READ_CHUNK_BYTES = 64 * 1024


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
                gettext("the request would go to %(dialled)s, not to the checked %(checked)s")
                % {"dialled": dialled, "checked": self.target.origin}
            )
        if scheme == "https":
            pool_kwargs["server_hostname"] = host_params["host"]
            pool_kwargs["assert_hostname"] = host_params["host"]
        host_params["host"] = self.address
        return self.poolmanager.connection_from_host(**host_params, pool_kwargs=pool_kwargs)


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
            raise DeadlineExceeded(gettext("deadline passed before the request was sent"))
        with requests.Session() as session, _send(session, method, target, address, headers, body,
                                                   remaining) as response:  # fmt: skip
            if response.status_code in REDIRECT_STATUSES and "location" in response.headers:
                try:
                    target = http_url_join(target, response.headers["location"])
                except UrlRefused as exc:
                    raise BlockedDestination(
                        gettext("redirect to a refused URL: %(reason)s") % {"reason": exc}
                    ) from exc
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
        gettext("more than %(count)s redirects; last to %(url)s")
        % {"count": settings.BATCHJOBS_HTTP_MAX_REDIRECTS, "url": target.url}
    )


def request_error_masked(
    error: requests.RequestException, *, url: str
) -> requests.RequestException:
    """`error` as an exception of the same class (a retry policy naming it still matches) whose
    message has `url`'s path and query masked: requests and urllib3 quote them ("Max retries
    exceeded with url: /items?token=..."). Raise it `from None`, so that the chain of errors
    quoting them is not printed with it."""
    return type(error)(text_url_masked(str(error), url=url))


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
        raise ResponseTooLarge(
            gettext("response declares %(declared)s bytes, over the %(cap)s cap")
            % {"declared": declared, "cap": max_bytes}
        )
    chunks, size = [], 0
    for chunk in response.iter_content(READ_CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            raise ResponseTooLarge(
                gettext("response is over the %(cap)s byte cap") % {"cap": max_bytes}
            )
        if time.monotonic() > deadline:
            raise DeadlineExceeded(gettext("the response was still arriving at the deadline"))
        chunks.append(chunk)
    return b"".join(chunks)
