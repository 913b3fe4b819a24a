"""Time zone names: only IANA names the tz database knows, so a schedule's zone always loads."""

from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.utils.translation import gettext


@cache
def _known_zones() -> frozenset[str]:
    # Walks the tz database's directories: once per process is enough.
    return frozenset(available_timezones())


def timezone_errors(name: str) -> list[str]:
    """Why `name` is not a usable time zone, or nothing."""
    if not name:
        return [gettext("Name an IANA time zone such as Europe/Berlin or UTC.")]
    unknown = [
        gettext("Unknown time zone %(name)s; use an IANA name such as Europe/Berlin.")
        % {"name": repr(name)}
    ]
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return unknown
    if name not in _known_zones():
        return unknown
    return []
