"""Time zone names: only IANA names the tz database knows, so a schedule's zone always loads.
A name it does not know is refused with the closest real ones ("Asia/Seul": Asia/Seoul), and
the console's zone picker offers what zone_suggestions finds for what is typed: one ranking for
every place a zone is typed or checked (schedules, preferences, API, command line)."""

from difflib import SequenceMatcher
from functools import cache
from zoneinfo import available_timezones

from django.utils.translation import gettext

# How alike a typo and a zone's name must be to be suggested (difflib's ratio): "Asia/Seul" and
# "Asia/Seoul" score 0.95, "Europe/Berln" and "Europe/Dublin" 0.8, which is not suggested.
CLOSE_MATCH_CUTOFF = 0.85
MAX_SUGGESTIONS = 50  # what a picker's list shows at most
MAX_ZONE_NAME = 64  # BatchSchedule.timezone's length; the longest zone name is 32


@cache
def zone_names() -> tuple[str, ...]:
    """Every IANA zone name the tz database knows, sorted. Walks the tz database's
    directories: once per process is enough."""
    return tuple(sorted(available_timezones()))


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(zone_names())


def timezone_errors(name: str) -> list[str]:
    """Why `name` is not a usable time zone, with the closest real zones when it looks like a
    typo, or nothing."""
    if not name:
        return [gettext("Name an IANA time zone such as Europe/Berlin or UTC.")]
    if name in _known_zones():  # each of them loads; a directory ("Asia") or a path does not
        return []
    close = zone_suggestions(name, limit=3, typos_only=True)
    if not close:
        return [
            gettext("Unknown time zone %(name)s; use an IANA name such as Europe/Berlin.")
            % {"name": repr(name)}
        ]
    return [
        gettext("Unknown time zone %(name)s.") % {"name": repr(name)},
        gettext("Did you mean %(zones)s?") % {"zones": ", ".join(close)},
    ]


def zone_suggestions(typed: str, *, limit: int = 10, typos_only: bool = False) -> list[str]:
    """The zones that `typed` may stand for, best first: the zone itself, then names whose
    city or whole name starts with it, then names containing it ("seoul", "Asia/Se"), then
    names close to it as a typo is ("Asia/Seul", "Europe/Berln"). `typos_only`: only the last
    kind, for an error's "Did you mean". At most `limit` (bounded by MAX_SUGGESTIONS)."""
    query = " ".join(typed.split()).replace(" ", "_").casefold()
    limit = max(0, min(limit, MAX_SUGGESTIONS))
    if not query or not limit or len(query) > MAX_ZONE_NAME:
        return []
    found: dict[str, None] = {}  # ordered, without repeats
    if not typos_only:
        for zone in zone_names():
            if zone.casefold() == query:
                found[zone] = None
        for zone in zone_names():
            folded = zone.casefold()
            if folded.startswith(query) or _city(folded).startswith(query):
                found[zone] = None
        for zone in zone_names():
            if query in zone.casefold():
                found[zone] = None
    if len(found) < limit:
        scored = []
        for zone in zone_names():
            folded = zone.casefold()
            # The whole name ("asia/seul") or the city alone ("seul"), whichever is closer.
            score = max(_ratio(query, folded), _ratio(query, _city(folded)))
            if score >= CLOSE_MATCH_CUTOFF:
                scored.append((-score, zone))
        for _score, zone in sorted(scored):
            found[zone] = None
    return list(found)[:limit]


def _city(folded_zone: str) -> str:
    return folded_zone.rsplit("/", 1)[-1]


def _ratio(query: str, name: str) -> float:
    matcher = SequenceMatcher(None, query, name)
    # The cheap upper bounds first: most of the ~600 names are far from any query.
    if (
        matcher.real_quick_ratio() < CLOSE_MATCH_CUTOFF
        or matcher.quick_ratio() < CLOSE_MATCH_CUTOFF
    ):
        return 0.0
    return matcher.ratio()
