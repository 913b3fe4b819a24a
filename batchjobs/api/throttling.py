"""The API's rate limits (REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"]): DRF's anonymous and user
rates, counted where they must be.

Operations count in the shared cache (Redis), so that every web process sees the same counts.
When it cannot be reached the request is refused with 503 ("rate limiting store unavailable"),
never let through unthrottled.

The schema and Swagger UI count in this process's memory instead: they describe the API and must
answer while Redis is away (a newcomer's first page, a client generator's input). Their limit is
per process, which is enough to keep a caller from making each process regenerate the schema in
a loop.
"""

from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache.backends.locmem import LocMemCache
from rest_framework import throttling

from batchjobs.shared_cache import shared_cache_needed

if TYPE_CHECKING:  # rest_framework.views loads the throttles named in settings: no cycle
    from rest_framework.request import Request
    from rest_framework.views import APIView

RATE_LIMITING = "rate limiting"
PROCESS_LOCAL_CACHE_NAME = "batchjobs-process-local-throttle"


class SharedStoreThrottleMixin(throttling.SimpleRateThrottle):
    def allow_request(self, request: "Request", view: "APIView") -> bool:
        with shared_cache_needed(RATE_LIMITING):
            return super().allow_request(request, view)


class SharedAnonRateThrottle(SharedStoreThrottleMixin, throttling.AnonRateThrottle):
    """The "anon" rate per address, counted in the shared cache."""


class SharedUserRateThrottle(SharedStoreThrottleMixin, throttling.UserRateThrottle):
    """The "user" rate per user (per address for the anonymous), counted in the shared cache."""


class ProcessLocalThrottleMixin(throttling.SimpleRateThrottle):
    def __init__(self) -> None:
        super().__init__()
        # Instances of one name share their entries. The default cache's KEY_PREFIX keeps
        # namespaces apart here as it does there (two sites in one process, or one test from
        # the next), read per request as the settings may change.
        self.cache = LocMemCache(
            PROCESS_LOCAL_CACHE_NAME,
            {"KEY_PREFIX": settings.CACHES["default"].get("KEY_PREFIX", "")},
        )


class ProcessLocalAnonRateThrottle(ProcessLocalThrottleMixin, throttling.AnonRateThrottle):
    """The "anon" rate per address, counted in this process's memory."""


class ProcessLocalUserRateThrottle(ProcessLocalThrottleMixin, throttling.UserRateThrottle):
    """The "user" rate per user, counted in this process's memory."""


# For the views that must answer without Redis (the schema and the docs).
PROCESS_LOCAL_THROTTLES = (ProcessLocalAnonRateThrottle, ProcessLocalUserRateThrottle)
