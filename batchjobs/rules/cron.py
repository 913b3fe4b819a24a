"""Cron expressions: 5 fields (minute hour day month weekday), or 6 with seconds first as in
Quartz and Spring. An expression is refused when croniter cannot read it, and when it never
fires (day 31 of February, of April...): such a schedule would sit there doing nothing."""

import calendar
from datetime import datetime

from croniter import CroniterBadDateError, croniter
from django.utils.dates import MONTHS
from django.utils.translation import gettext, ngettext

# An expression that fires at all fires within this many years (29 February: every 4 years).
NEVER_FIRES_HORIZON_YEARS = 5
# A fixed start for the search, so the verdict does not depend on the day it is asked.
NEVER_FIRES_REFERENCE = datetime(2000, 1, 1)
# The longest each month can be (February in a leap year).
MONTH_MAX_DAYS = {month: calendar.monthrange(2000, month)[1] for month in range(1, 13)}


def croniter_order(expression: str) -> str:
    """Our 6-field form puts seconds first (Quartz, Spring); croniter expects them last."""
    fields = expression.split()
    if len(fields) == 6:
        fields = fields[1:] + fields[:1]
    return " ".join(fields)


def cron_errors(expression: str) -> list[str]:
    """Why `expression` is not a cron expression that fires, or nothing."""
    fields = expression.split()
    if len(fields) not in (5, 6):
        return [
            gettext("A cron expression has 5 fields (or 6 with seconds first), not %(count)s.")
            % {"count": len(fields)}
        ]
    try:
        parsed = croniter(
            croniter_order(expression),
            NEVER_FIRES_REFERENCE,
            max_years_between_matches=NEVER_FIRES_HORIZON_YEARS,
        )
    except (ValueError, KeyError) as exc:
        # croniter's own reason stays in English.
        return [gettext("Not a valid cron expression: %(reason)s.") % {"reason": exc}]
    try:
        parsed.get_next(datetime)
    except CroniterBadDateError:
        return [_never_fires_message(parsed.expanded)]
    return []


def _never_fires_message(expanded: list[list]) -> str:
    """Name the day and months when that is why (day 31 in February), else say it plainly."""
    days, months = expanded[2], expanded[3]
    numbered = all(isinstance(value, int) for value in (*days, *months))
    if numbered and all(day > MONTH_MAX_DAYS[month] for day in days for month in months):
        names = gettext(" or ").join(str(MONTHS[month]) for month in months)
        listed = ", ".join(str(day) for day in days)
        return ngettext(
            "Never fires: day %(days)s does not occur in %(months)s.",
            "Never fires: days %(days)s do not occur in %(months)s.",
            len(days),
        ) % {"days": listed, "months": names}
    return gettext("Never fires: no date matches this expression.")
