"""Masking of secret HTTP header values (DESIGN.md §4, invariant 9: masked wherever shown).

A header is {"name": ..., "value": ..., "secret": true|false}. Every page that shows headers
shows `headers_masked(...)`; a form that received masked headers turns them back into the stored
values with `headers_unmasked(...)`, so saving a form without retyping a secret keeps it.
"""

from typing import Any

from django.core.exceptions import ValidationError

SECRET_MASK = "••••••"


def headers_masked(headers: Any) -> Any:
    """The headers with each secret value replaced by SECRET_MASK; anything that is not a
    well-formed header list is returned as is, since it holds no recognisable secret."""
    if not isinstance(headers, list):
        return headers
    return [
        {**header, "value": SECRET_MASK} if _is_secret(header) else header for header in headers
    ]


def headers_unmasked(submitted: Any, *, stored: Any) -> Any:
    """The submitted headers with each masked secret value replaced by the stored value of the
    secret header of the same name (case-insensitive, in order for repeated names).

    Raises ValidationError when a mask cannot stand for a stored secret: the header is no longer
    secret (restoring would reveal the value) or no stored secret header has its name."""
    if not isinstance(submitted, list):
        return submitted
    stored_secrets: dict[str, list[str]] = {}
    for header in stored if isinstance(stored, list) else []:
        if _is_secret(header):
            stored_secrets.setdefault(str(header.get("name", "")).lower(), []).append(
                header.get("value")
            )
    restored, errors = [], []
    for position, header in enumerate(submitted, start=1):
        if not (isinstance(header, dict) and header.get("value") == SECRET_MASK):
            restored.append(header)
            continue
        name = str(header.get("name", ""))
        candidates = stored_secrets.get(name.lower())
        if not _is_secret(header):
            errors.append(
                f"header {position} ({name}): {SECRET_MASK} stands for a hidden value; "
                "keep the header secret or enter its value."
            )
        elif not candidates:
            errors.append(
                f"header {position} ({name}): enter its value; {SECRET_MASK} keeps a stored "
                "secret only under the name it was saved with."
            )
        else:
            restored.append({**header, "value": candidates.pop(0)})
    if errors:
        raise ValidationError(errors)
    return restored


def _is_secret(header: Any) -> bool:
    return isinstance(header, dict) and header.get("secret") is True
