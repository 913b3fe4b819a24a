import random
from datetime import timedelta

from batchjobs.models import BatchJob


def retry_delay(
    job: BatchJob, *, failed_attempt: int, rng: random.Random | None = None
) -> timedelta:
    """Exponential backoff from the job's base, capped, with jitter over the upper half.

    Attempt 1 failed -> base, attempt 2 -> 2 * base, ... never above the cap. The upper-half
    jitter spreads a burst of retries without ever retrying sooner than half the backoff.
    """
    delay = min(
        job.retry_backoff_max_seconds, job.retry_backoff_seconds * 2 ** (failed_attempt - 1)
    )
    if job.retry_jitter and delay > 0:
        delay = (rng or random).uniform(delay / 2, delay)
    return timedelta(seconds=delay)
