"""The shared cache (Django's default cache, on Redis) where a request cannot do without it: the
API's rate limits and the login lockout. When it cannot be reached, each of them refuses the
request with `Unavailable` naming what needed it (the API answers 503, the login form says so),
rather than answering 500 or letting the request through unchecked."""

from collections.abc import Iterator
from contextlib import contextmanager

from redis.exceptions import RedisError

from batchjobs.errors import Unavailable

# redis-py raises its ConnectionError/TimeoutError (RedisErrors) for a refused port, a missing
# socket file or a timeout; OSError covers a socket error that escapes its wrapping.
CACHE_UNREACHABLE_ERRORS = (RedisError, OSError)


@contextmanager
def shared_cache_needed(purpose: str) -> Iterator[None]:
    """Run a block that reads or writes the shared cache for `purpose` ("rate limiting", ...);
    the cache being unreachable raises Unavailable("<purpose> store unavailable: ...")."""
    try:
        yield
    except CACHE_UNREACHABLE_ERRORS as exc:
        raise Unavailable(
            f"{purpose} store unavailable: the shared cache (Redis) cannot be reached; "
            "try again later."
        ) from exc
