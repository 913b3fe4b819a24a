"""Handlers (and batch jobs) registered only under the test settings, for fault scenarios."""

import os
import signal

from batchjobs.handlers.registry import HandlerContext, handler


@handler("tests.kill_worker", schema={"type": "object", "additionalProperties": False})
def kill_worker(ctx: HandlerContext) -> None:
    """Kill the process running this attempt, as a segfault or the OOM killer would."""
    os.kill(os.getpid(), signal.SIGKILL)


@handler(
    "tests.swallow_timeout",
    schema={"type": "object", "properties": {"seconds": {"type": "number"}}},
)
def swallow_timeout(ctx: HandlerContext, *, seconds: float = 30) -> None:
    """Sleeps in a loop that catches Exception, to prove the time limit still ends it."""
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            time.sleep(0.05)
        except Exception:  # noqa: S110 - the point of this handler
            pass


from tests.support import batch_jobs as _batch_jobs  # noqa: E402,F401 - registers the test batch jobs
