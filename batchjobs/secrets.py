"""Secrets at rest: values marked secret (HTTP header values) are stored encrypted with Fernet
(AES-128-CBC + HMAC-SHA256) and decrypted only to build the outbound request.

Keys come from BATCHJOBS_SECRET_KEYS (comma-separated Fernet keys, newest first; the older ones
still decrypt, so keys can be rotated: add a new key in front, run `manage.py rotate_secrets`,
then drop the old key). Without it, a key is derived from DJANGO_SECRET_KEY, which suits the
quick start; production sets BATCHJOBS_SECRET_KEYS.
"""

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

PREFIX = "enc:v1:"


class SecretUnreadable(Exception):
    """A stored secret no configured key can decrypt (a key was dropped too early)."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...], fallback_seed: str) -> MultiFernet:
    if keys:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"batchjobs-secrets", info=b"fernet-v1"
    ).derive(fallback_seed.encode())
    return MultiFernet([Fernet(base64.urlsafe_b64encode(derived))])


def _cipher() -> MultiFernet:
    return _fernet(tuple(settings.BATCHJOBS_SECRET_KEYS), settings.SECRET_KEY)


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
        raise SecretUnreadable("no configured key decrypts this secret") from exc


def secret_rotate(value: str) -> str:
    """Re-encrypt under the newest key (plain values get encrypted)."""
    if not secret_is_encrypted(value):
        return secret_encrypt(value)
    try:
        return PREFIX + _cipher().rotate(value[len(PREFIX) :].encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable("no configured key decrypts this secret") from exc
