import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


class SkipLimitExceeded(Exception):
    """More items were skipped than the step's skip policy allows."""


@dataclass(frozen=True)
class SkipPolicy:
    """Items whose failure is one of `exceptions` are skipped, up to `limit` per step."""

    exceptions: tuple[type[BaseException], ...] = ()
    limit: int = 0

    def skippable(self, error: BaseException) -> bool:
        return bool(self.exceptions) and isinstance(error, self.exceptions)


@dataclass(frozen=True)
class RetryPolicy:
    """A call failing with one of `exceptions` is tried again, `attempts` times in all, with an
    exponential backoff starting at `backoff_seconds`."""

    exceptions: tuple[type[BaseException], ...] = ()
    attempts: int = 1
    backoff_seconds: float = 0.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    def retryable(self, error: BaseException) -> bool:
        return bool(self.exceptions) and isinstance(error, self.exceptions)

    def call(self, fn: Callable[[], T]) -> T:
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except Exception as error:
                if attempt >= self.attempts or not self.retryable(error):
                    raise
                if self.backoff_seconds:
                    self.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        raise AssertionError("unreachable")
