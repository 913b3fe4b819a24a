"""Secrets at rest: values marked secret (HTTP header values) are stored encrypted with Fernet
(AES-128-CBC + HMAC-SHA256) and decrypted only to build the outbound request.

Keys come from BATCHJOBS_SECRET_KEYS (comma-separated Fernet keys, newest first; the older ones
still decrypt, so keys can be rotated: add a new key in front, run `manage.py rotate_secrets`,
then drop the old key). Without it, a key is derived from DJANGO_SECRET_KEY (and one from each
of DJANGO_SECRET_KEY_FALLBACKS, to decrypt), which suits the quick start; production sets
BATCHJOBS_SECRET_KEYS.

Secrets when shown (DESIGN.md §4, invariant 9: masked wherever shown): a header is {"name": ...,
"value": ..., "secret": true|false}. Every page, API answer and audit entry that shows headers
shows `headers_masked(...)`; a form or request that received masked headers turns them back into
the stored values with `headers_unmasked(...)`, so saving without retyping a secret keeps it.
"""

import base64
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext

from batchjobs.rules.masking import SECRET_MASK

PREFIX = "enc:v1:"


class SecretUnreadable(Exception):
    """A stored secret no configured key can decrypt (a key was dropped too early)."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...], seeds: tuple[str, ...]) -> MultiFernet:
    """The configured keys; without any, keys derived from DJANGO_SECRET_KEY and its fallbacks
    (the first encrypts, all decrypt, as for configured keys)."""
    if keys:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    return MultiFernet([Fernet(_derived_key(seed)) for seed in seeds])


def _derived_key(seed: str) -> bytes:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"batchjobs-secrets", info=b"fernet-v1"
    ).derive(seed.encode())
    return base64.urlsafe_b64encode(derived)


def _cipher() -> MultiFernet:
    seeds = (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS)
    return _fernet(tuple(settings.BATCHJOBS_SECRET_KEYS), seeds)


def secret_is_encrypted(value: str) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def secret_encrypt(value: str) -> str:
    """Encrypt a plain value; an already encrypted one is returned as it is."""
    if secret_is_encrypted(value):
        return value
    return PREFIX + _cipher().encrypt(value.encode()).decode()


def secret_decrypt(value: str) -> str:
    if not secret_is_encrypted(value):
        return value
    try:
        return _cipher().decrypt(value[len(PREFIX) :].encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable(gettext("no configured key decrypts this secret")) from exc


def secret_rotate(value: str) -> str:
    """Re-encrypt under the newest key (plain values get encrypted)."""
    if not secret_is_encrypted(value):
        return secret_encrypt(value)
    try:
        return PREFIX + _cipher().rotate(value[len(PREFIX) :].encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable(gettext("no configured key decrypts this secret")) from exc


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
                gettext(
                    "header %(position)s (%(name)s): %(mask)s stands for a hidden value; "
                    "keep the header secret or enter its value."
                )
                % {"position": position, "name": name, "mask": SECRET_MASK}
            )
        elif not candidates:
            errors.append(
                gettext(
                    "header %(position)s (%(name)s): enter its value; %(mask)s keeps a stored "
                    "secret only under the name it was saved with."
                )
                % {"position": position, "name": name, "mask": SECRET_MASK}
            )
        else:
            restored.append({**header, "value": candidates.pop(0)})
    if errors:
        raise ValidationError(errors)
    return restored


def _is_secret(header: Any) -> bool:
    return isinstance(header, dict) and header.get("secret") is True
