"""The soft time limit of one attempt, raised inside the running code.

Celery's hard `time_limit` (timeout + BATCHJOBS_HARD_TIMEOUT_GRACE_SECONDS, set per message)
remains the backstop for code that never returns to the interpreter.
"""

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class AttemptTimeout(BaseException):  # noqa: N818
    """The attempt ran past its job's timeout.

    A BaseException, like KeyboardInterrupt, so that a handler's `except Exception` cannot
    swallow it and run on.
    """


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        # Signals reach only the main thread; the hard limit still applies.
        yield
        return

    def expire(signum, frame):
        raise AttemptTimeout(f"timed out after {seconds:g}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
