"""The note on a fire that beat skipped as missed (misfire policy "skip").

Beat (batchjobs.scheduling.firing) writes it as the error of the SKIPPED execution it records
for the fire; the missed-run notifications (batchjobs.services.notifications.rules) find those
executions by it. One definition, so the writer and the reader cannot drift apart.
"""

from django.utils.translation import gettext

MISFIRE_SKIP_PREFIX = "misfire skip:"


def misfire_skip_note(missed: str) -> str:
    """'misfire skip: 3 missed fire(s) since ... not run', for `missed` = '3 missed fire(s)...'."""
    # The prefix stays as it is in every language: the notification rules look for it.
    return f"{MISFIRE_SKIP_PREFIX} " + gettext("%(missed)s not run") % {"missed": missed}
