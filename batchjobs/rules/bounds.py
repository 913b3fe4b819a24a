"""The bounds of every number a user can enter, chosen so that the code can always compute
with the value: a timedelta, a datetime a hundred years on, 2 ** attempts times a backoff.

A value past these bounds is refused at save (model validators, so the admin, the API and the
services all name the field); code that meets one anyway, inserted behind validation's back,
sets its row aside (DESIGN.md §4, invariant 11).
"""

import math
from collections.abc import Mapping
from typing import Any

from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.functional import lazy
from django.utils.translation import gettext, gettext_lazy

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR
YEAR = 365 * DAY

MAX_TIMEOUT_SECONDS = 7 * DAY  # one attempt of one execution
MAX_ATTEMPTS = 100
MAX_BACKOFF_SECONDS = YEAR  # the delay before one retry
MAX_RETENTION_DAYS = 100 * 365
MAX_PRIORITY = 9
MAX_DELAY_SECONDS = 10 * YEAR  # a once-schedule "after a delay"
MAX_INTERVAL_SECONDS = 100 * YEAR
# The interval in each unit, at most MAX_INTERVAL_SECONDS (days are calendar days).
UNIT_SECONDS = {"seconds": 1, "minutes": MINUTE, "hours": HOUR, "days": DAY}
# The units as sentences name them ("every 5 minutes").
UNIT_WORDS = {
    "seconds": gettext_lazy("seconds"),
    "minutes": gettext_lazy("minutes"),
    "hours": gettext_lazy("hours"),
    "days": gettext_lazy("days"),
}
MAX_INTERVAL_EVERY = {
    unit: MAX_INTERVAL_SECONDS // seconds for unit, seconds in UNIT_SECONDS.items()
}
MAX_MISFIRE_GRACE_SECONDS = YEAR
MAX_CATCH_UP_WINDOW_SECONDS = YEAR
MAX_CATCH_UP_RUNS = 10_000  # as many missed fires as beat looks at per schedule
MAX_JITTER_SECONDS = DAY
MAX_RUNS = 2**31 - 1  # a schedule's max_runs: PostgreSQL's integer
# Limits on runs at once (per job, per queue, per target host) and calls per second (per host).
MAX_RUNNING_LIMIT = 100_000
MAX_PER_SECOND_LIMIT = 100_000
MAX_BACKFILL_CONCURRENCY = 1_000  # a backfill's executions queued or running at once
# A backfill over more fires than this needs an explicit confirmation.
BACKFILL_CONFIRM_FIRES = 1_000_000


def between(low: float, high: float, *, unit: str = "") -> list:
    """Model field validators for low <= value <= high, whose message names the range in
    words a person reads: "Must be between 0 and 31,536,000 seconds (365 days)."."""
    if unit not in ("", "seconds", "days"):
        raise ValueError(f"no message for the unit {unit!r}")
    message = _range_message_lazy(low, high, unit)
    return [MinValueValidator(low, message), MaxValueValidator(high, message)]


def _range_message(low: float, high: float, unit: str) -> str:
    # In the language of the request that shows it: validators are made once, at import.
    values = {"low": _shown(low), "high": _shown(high), "days": _shown(high / DAY)}
    if unit == "seconds" and high >= DAY:
        return gettext("Must be between %(low)s and %(high)s seconds (%(days)s days).") % values
    if unit == "seconds":
        return gettext("Must be between %(low)s and %(high)s seconds.") % values
    if unit == "days":
        return gettext("Must be between %(low)s and %(high)s days.") % values
    return gettext("Must be between %(low)s and %(high)s.") % values


_range_message_lazy = lazy(_range_message, str)


def _shown(value: float) -> str:
    """2147483647 -> '2,147,483,647'; 0.001 -> '0.001' (not 2.14748e+09)."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def interval_every_error(every: int | None, unit: str) -> str:
    """Why an interval of `every` `unit` is refused, or empty."""
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        return gettext("An interval must be more than 0.")
    limit = MAX_INTERVAL_EVERY.get(unit)
    if limit is not None and every > limit:
        return gettext("At most %(limit)s %(unit)s (100 years).") % {
            "limit": limit,
            "unit": UNIT_WORDS[unit],
        }
    return ""


def non_finite_errors(values: Mapping[str, Any]) -> dict[str, list[str]]:
    """The fields whose value is a NaN or infinite float. No bound refuses NaN (it compares
    false both ways) and an integer field cannot even convert infinity, so these are refused
    by name before any bound is checked."""
    return {
        name: [gettext("Enter a finite number.")]
        for name, value in values.items()
        if isinstance(value, float) and not math.isfinite(value)
    }
