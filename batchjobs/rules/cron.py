"""Cron expressions: 5 fields (minute hour day month weekday), or 6 with seconds first as in
Quartz and Spring. An expression is refused when croniter cannot read it, and when it never
fires (day 31 of February, of April...): such a schedule would sit there doing nothing. A
refusal names the field and its range ("minute field: 61 is out of range 0–59"): croniter's
own reason ("[61 * * * *] is not acceptable, out of range") names neither."""

import calendar
import re
from dataclasses import dataclass
from datetime import datetime

from croniter import CroniterBadDateError, croniter
from django.utils.dates import MONTHS
from django.utils.functional import Promise
from django.utils.translation import gettext, ngettext, pgettext_lazy

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


@dataclass(frozen=True)
class CronField:
    name: Promise  # as an error message names it
    low: int
    high: int
    names: tuple[str, ...] = ()  # names standing for low, low + 1, ... ("jan" is 1)


SECOND = CronField(pgettext_lazy("cron field", "second"), 0, 59)
FIVE_FIELDS = (
    CronField(pgettext_lazy("cron field", "minute"), 0, 59),
    CronField(pgettext_lazy("cron field", "hour"), 0, 23),
    CronField(pgettext_lazy("cron field", "day of month"), 1, 31),
    # croniter's names, in English whatever the locale.
    CronField(
        pgettext_lazy("cron field", "month"),
        1,
        12,
        names=("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    ),
    # 7 is Sunday too, as in Vixie cron.
    CronField(
        pgettext_lazy("cron field", "day of week"),
        0,
        7,
        names=("sun", "mon", "tue", "wed", "thu", "fri", "sat"),
    ),
)
# One item of a field's comma-separated list: a value or range, with an optional step.
CRON_ITEM = re.compile(r"(?P<base>\*|\?|(?P<first>\w+)(?:-(?P<last>\w+))?)(?:/(?P<step>\w+))?")
# Quartz's L, W and # forms are left to croniter, which knows what it accepts of them.
QUARTZ_MARKS = re.compile(r"[LW#]")


def cron_fields(expression: str) -> tuple[CronField, ...]:
    """The fields of `expression` in its own order (6 fields: seconds first)."""
    return (SECOND, *FIVE_FIELDS) if len(expression.split()) == 6 else FIVE_FIELDS


def cron_errors(expression: str) -> list[str]:
    """Why `expression` is not a cron expression that fires, or nothing."""
    fields = expression.split()
    if len(fields) not in (5, 6):
        return [
            gettext("A cron expression has 5 fields (or 6 with seconds first), not %(count)s.")
            % {"count": len(fields)}
        ]
    problems = [
        problem
        for text, field in zip(fields, cron_fields(expression), strict=True)
        if (problem := _field_problem(text, field))
    ]
    if problems:
        return problems
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


def _field_problem(text: str, field: CronField) -> str:
    """What is wrong with one field's text, naming the field and its range, or ""."""
    if QUARTZ_MARKS.search(text):
        return ""
    values = {"field": field.name, "low": field.low, "high": field.high}
    for item in text.split(","):
        match = CRON_ITEM.fullmatch(item)
        if match is None:
            return gettext("%(field)s field: %(value)s is not a value, range or step.") % {
                **values,
                "value": repr(item),
            }
        step = match["step"]
        if step is not None and (not step.isdigit() or not 1 <= int(step) <= field.high + 1):
            return gettext(
                "%(field)s field: the step %(value)s must be a number from 1 to %(most)d."
            ) % {**values, "value": repr(step), "most": field.high + 1}
        for value in (match["first"], match["last"]):
            if value is None:
                continue
            problem = _value_problem(value, field)
            if problem:
                return problem % {**values, "value": value}
    return ""


def _value_problem(value: str, field: CronField) -> str:
    """A message to fill with the field, its range and `value`, or "" when it is in range."""
    if value.isdigit():
        if field.low <= int(value) <= field.high:
            return ""
        return gettext("%(field)s field: %(value)s is out of range %(low)d–%(high)d.")
    if value.casefold() in (name.casefold() for name in field.names):
        return ""
    if field.names:
        return gettext(
            "%(field)s field: %(value)s is neither a number from %(low)d to %(high)d nor a name."
        )
    return gettext("%(field)s field: %(value)s is not a number from %(low)d to %(high)d.")


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
