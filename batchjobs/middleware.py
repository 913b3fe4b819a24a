"""Request middleware of the console and the API."""

from collections.abc import Callable
from zoneinfo import ZoneInfo

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from batchjobs.services.preferences import default_time_zone, user_time_zone


class DisplayTimeZoneMiddleware:
    """Shows times in the operator's display zone: their preference, else the deployment's
    (BATCHJOBS_TIME_ZONE). Values are stored and computed in UTC whatever zone is active."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        # Django builds the middleware when the web process starts: a misspelt
        # BATCHJOBS_TIME_ZONE stops it there, with the reason, instead of on a page.
        default_time_zone()
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # One query per request at most, kept on the request for whatever else asks.
        zone = ZoneInfo(user_time_zone(user=getattr(request, "user", None)))
        request.display_time_zone = zone  # type: ignore[attr-defined]
        timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
