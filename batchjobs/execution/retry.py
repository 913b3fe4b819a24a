import math
import random
from datetime import timedelta

from batchjobs.models import BatchJob
from batchjobs.rules.bounds import MAX_BACKOFF_SECONDS


def retry_delay(
    job: BatchJob, *, failed_attempt: int, rng: random.Random | None = None, jitter: bool = True
) -> timedelta:
    """Exponential backoff from the job's base, capped, with jitter over the upper half.

    Attempt 1 failed -> base, attempt 2 -> 2 * base, ... never above the cap. The upper-half
    jitter spreads a burst of retries without ever retrying sooner than half the backoff;
    `jitter=False` gives the longest delay the jitter could give.
    Never raises: stored values past the bounds (a row written behind validation's back) are
    brought within them, so that one job's backoff cannot stop the reaper (DESIGN.md §4.11).
    """
    base = _within_bounds(job.retry_backoff_seconds)
    cap = _within_bounds(job.retry_backoff_max_seconds)
    # The exponent is capped too: 2 ** 99 times a base would still be a float, but pointless.
    delay = min(cap, base * 2 ** min(max(failed_attempt - 1, 0), 64))
    if jitter and job.retry_jitter and delay > 0:
        delay = (rng or random).uniform(delay / 2, delay)
    return timedelta(seconds=delay)


def _within_bounds(seconds: float) -> float:
    """A stored backoff within 0..MAX_BACKOFF_SECONDS; NaN, which has no meaning, waits longest
    rather than retrying at once."""
    if math.isnan(seconds):
        return float(MAX_BACKOFF_SECONDS)
    return min(max(seconds, 0.0), float(MAX_BACKOFF_SECONDS))
