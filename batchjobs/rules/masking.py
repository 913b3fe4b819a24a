"""How secrets look when shown (DESIGN.md §4, invariant 9: masked wherever shown).

A secret header's value is replaced whole (batchjobs/secrets.py, headers_masked). A webhook URL
keeps its token in the path or the query (Slack: /services/T…/B…/<token>), so a URL is shown
with its scheme, host and port only, the rest masked.
"""

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

SECRET_MASK = "••••••"


def url_masked(url: str) -> str:
    """'https://hooks.slack.com/services/T0/B0/xyz' -> 'https://hooks.slack.com/••••••'.

    Anything that cannot be read as a URL with a host is masked whole; user information
    before an `@` is never shown."""
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except (AttributeError, ValueError):
        return SECRET_MASK
    if not parts.scheme or not host:
        return SECRET_MASK
    shown = f"{parts.scheme}://{f'[{host}]' if ':' in host else host}"
    if port is not None:
        shown += f":{port}"
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        shown += f"/{SECRET_MASK}"
    return shown


def text_url_masked(text: str, *, url: str) -> str:
    """`text` (an error message, say) with `url` and its path and query masked wherever they
    appear, as an HTTP library's exception message quotes them."""
    parts = urlsplit(url.strip())
    masked = text.replace(url, url_masked(url))
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    for secret in sorted({target, parts.path, parts.query}, key=len, reverse=True):
        if len(secret) > 1:
            masked = masked.replace(secret, SECRET_MASK)
    return masked


# Parameter names that say their value is a secret (password, api_key, client-secret, token,
# Authorization, ...): their values are masked in an attempt's log lines.
SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)?|secret|token|api[-_]?key|auth|credential|private[-_]?key|"
    r"signature|cookie|session",
    re.IGNORECASE,
)


def secret_param_values(params: Any) -> Iterator[str]:
    """The text of every value under a secret-looking name in `params` (nested objects and
    lists searched too), so that it can be masked where it would be shown."""
    if isinstance(params, dict):
        for name, value in params.items():
            if SECRET_NAME.search(str(name)):
                yield from _texts(value)
            else:
                yield from secret_param_values(value)
    elif isinstance(params, list):
        for value in params:
            yield from secret_param_values(value)


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, str | int | float) and not isinstance(value, bool):
        yield str(value)
