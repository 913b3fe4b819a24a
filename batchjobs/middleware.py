"""Request middleware of the console and the API."""

from collections.abc import Callable
from zoneinfo import ZoneInfo

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone


class DisplayTimeZoneMiddleware:
    """Shows times in the deployment's display zone (BATCHJOBS_TIME_ZONE); values are stored
    and computed in UTC whatever zone is active."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        timezone.activate(ZoneInfo(settings.BATCHJOBS_TIME_ZONE))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
