"""The soft time limit of one attempt, and an operator's stop, raised inside the running code.

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


class AttemptStopped(BaseException):  # noqa: N818
    """An operator stopped the execution while this attempt ran."""


_limit_active = threading.Event()
_stop_requested = threading.Event()


def request_stop() -> bool:
    """From any thread: end the attempt running under time_limit now, as stopped. False if no
    attempt is running under a limit in this process."""
    if not _limit_active.is_set():
        return False
    _stop_requested.set()
    signal.setitimer(signal.ITIMER_REAL, 0.001)  # the SIGALRM handler raises AttemptStopped
    return True


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        # Signals reach only the main thread; the hard limit still applies.
        yield
        return

    def expire(signum, frame):
        if _stop_requested.is_set():
            raise AttemptStopped("stopped by an operator")
        raise AttemptTimeout(f"timed out after {seconds:g}s")

    previous = signal.signal(signal.SIGALRM, expire)
    _stop_requested.clear()
    _limit_active.set()
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        _limit_active.clear()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
