"""Time zone names: only IANA names the tz database knows, so a schedule's zone always loads."""

from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones


@cache
def _known_zones() -> frozenset[str]:
    # Walks the tz database's directories: once per process is enough.
    return frozenset(available_timezones())


def timezone_errors(name: str) -> list[str]:
    """Why `name` is not a usable time zone, or nothing."""
    if not name:
        return ["Name an IANA time zone such as Europe/Berlin or UTC."]
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return [f"Unknown time zone {name!r}; use an IANA name such as Europe/Berlin."]
    if name not in _known_zones():
        return [f"Unknown time zone {name!r}; use an IANA name such as Europe/Berlin."]
    return []
