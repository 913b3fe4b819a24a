"""Test settings: speed knobs only. Everything else is base.py, driven by the environment."""

from .base import *  # noqa: F403
from .base import env

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
BATCHJOBS_HANDLER_MODULES = ["tests.fault_handlers"]
BATCHJOBS_HTTP_ALLOWLIST = env.list("BATCHJOBS_HTTP_ALLOWLIST", default=["127.0.0.1", "::1"])
