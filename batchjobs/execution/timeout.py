"""The soft time limit of one attempt, and an operator's stop, raised inside the running code.

Two ways, by the kind of worker process:
- a prefork child runs one attempt at a time in its main thread: SIGALRM raises in it;
- an I/O lane process (gevent) runs hundreds of attempts, each in a greenlet of one thread, so
  a signal would strike whichever greenlet happens to run: there each attempt has a
  gevent.Timeout of its own, and a stop is thrown into that attempt's greenlet alone.
Celery's hard `time_limit` (timeout + BATCHJOBS_HARD_TIMEOUT_GRACE_SECONDS, set per message)
remains the backstop for code that never returns to the interpreter.
"""

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.utils.translation import gettext


# An attempt's end as its error says it, written by the worker in the deployment's language
# (LANGUAGE_CODE).
def timed_out_message(seconds: float) -> str:
    return gettext("timed out after %(seconds)ss") % {"seconds": f"{seconds:g}"}


def stopped_message() -> str:
    return gettext("stopped by an operator")


class AttemptTimeout(BaseException):  # noqa: N818
    """The attempt ran past its job's timeout.

    A BaseException, like KeyboardInterrupt, so that a handler's `except Exception` cannot
    swallow it and run on.
    """


class AttemptStopped(BaseException):  # noqa: N818
    """An operator stopped the execution while this attempt ran."""


def cooperative() -> bool:
    """True in an I/O lane process: gevent has patched its sockets (`celery worker -P gevent`
    does it before anything else is imported), so many attempts share one thread."""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey and monkey.is_module_patched("socket"))


# The attempts running under a limit in this process: execution id -> how to stop it.
_stoppable: dict[int, Any] = {}
_stoppable_lock = threading.Lock()


def request_stop(execution_id: int) -> bool:
    """From any thread or greenlet: end the attempt of `execution_id` running under
    time_limit now, as stopped. False if none runs under a limit in this process."""
    with _stoppable_lock:
        stop = _stoppable.get(execution_id)
    if stop is None:
        return False
    stop()
    return True


@contextmanager
def time_limit(seconds: float, *, execution_id: int) -> Iterator[None]:
    """Raise AttemptTimeout in the block after `seconds`, and AttemptStopped when
    request_stop(execution_id) is called."""
    if cooperative():
        with _greenlet_limit(seconds, execution_id=execution_id):
            yield
    elif threading.current_thread() is threading.main_thread():
        with _signal_limit(seconds, execution_id=execution_id):
            yield
    else:
        # Signals reach only the main thread; the hard limit still applies.
        yield


@contextmanager
def _signal_limit(seconds: float, *, execution_id: int) -> Iterator[None]:
    stop_requested = threading.Event()

    def expire(signum, frame):
        if stop_requested.is_set():
            raise AttemptStopped(stopped_message())
        raise AttemptTimeout(timed_out_message(seconds))

    def stop() -> None:
        stop_requested.set()
        signal.setitimer(signal.ITIMER_REAL, 0.001)  # the handler raises AttemptStopped

    previous = signal.signal(signal.SIGALRM, expire)
    with _stoppable_lock:
        _stoppable[execution_id] = stop
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        with _stoppable_lock:
            _stoppable.pop(execution_id, None)
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def _greenlet_limit(seconds: float, *, execution_id: int) -> Iterator[None]:
    import gevent

    attempt = gevent.getcurrent()
    hub = gevent.get_hub()

    def stop() -> None:
        # Thrown from the hub's loop, and only if this attempt still runs under the limit by
        # then (the heartbeat asks from another greenlet; the attempt may just have ended).
        def throw() -> None:
            if _stoppable.get(execution_id) is stop:
                attempt.throw(AttemptStopped(stopped_message()))

        hub.loop.run_callback(throw)

    with _stoppable_lock:
        _stoppable[execution_id] = stop
    try:
        with gevent.Timeout(seconds, AttemptTimeout(timed_out_message(seconds))):
            yield
    finally:
        with _stoppable_lock:
            _stoppable.pop(execution_id, None)
