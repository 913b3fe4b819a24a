"""Test settings: speed knobs only. Everything else is base.py, driven by the environment."""

import os

# The examples' tests run with the rest, and the worker and beat processes tests start (same
# settings, this environment) register the example handlers too. base.py reads it on import.
os.environ.setdefault("BATCHJOBS_EXAMPLES", "true")

from .base import *  # noqa: E402, F403
from .base import env  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
BATCHJOBS_HANDLER_MODULES = ["tests.support.fault_handlers"]
BATCHJOBS_HTTP_ALLOWLIST = env.list("BATCHJOBS_HTTP_ALLOWLIST", default=["127.0.0.1", "::1"])
