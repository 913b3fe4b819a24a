"""An interval in words, with the plural each language needs: "every minute", "every 5
minutes" ("1분마다", "5분마다")."""

from django.utils.translation import ngettext


def interval_phrase(every: int | None, unit: str) -> str:
    """E.g. "every minute", "every 5 minutes"; a unit it does not know is shown as stored."""
    count = every or 0
    if unit == "seconds":
        text = ngettext("every second", "every %(count)d seconds", count)
    elif unit == "minutes":
        text = ngettext("every minute", "every %(count)d minutes", count)
    elif unit == "hours":
        text = ngettext("every hour", "every %(count)d hours", count)
    elif unit == "days":
        text = ngettext("every day", "every %(count)d days", count)
    else:  # stored behind validation's back
        return f"every {count} {unit}"
    return text % {"count": count}
