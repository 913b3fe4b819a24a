"""A schedule's account of occurrences: what became of each nominal fire (beat, a resume, a
backfill wrote it: scheduling.occurrences), by window and outcome, and the fires per outcome."""

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from batchjobs.errors import InvalidInput
from batchjobs.models import OccurrenceOutcome, ScheduleOccurrence


def occurrence_list(
    *,
    schedule_id: int,
    since: datetime | None = None,
    until: datetime | None = None,
    outcomes: Iterable[str] = (),
) -> QuerySet[ScheduleOccurrence]:
    """The schedule's occurrence rows whose fires fall in [since, until] (a run of fires that
    overlaps the window is included whole), latest first. An unknown outcome or a window that
    ends before it starts is refused, naming the field."""
    outcomes = list(outcomes)
    unknown = sorted(set(outcomes) - set(OccurrenceOutcome.values))
    if unknown:
        raise InvalidInput(
            {"outcome": _("Unknown outcome(s): %(names)s.") % {"names": ", ".join(unknown)}}
        )
    if since is not None and until is not None and until < since:
        raise InvalidInput({"until": _("The end must not come before the start.")})
    rows = ScheduleOccurrence.objects.filter(schedule_id=schedule_id)
    if until is not None:
        rows = rows.filter(scheduled_for__lte=until)
    if since is not None:
        rows = rows.filter(Q(scheduled_for__gte=since) | Q(last_scheduled_for__gte=since))
    if outcomes:
        rows = rows.filter(outcome__in=outcomes)
    return rows.select_related("execution").order_by("-scheduled_for")


def occurrence_account(
    *, schedule_id: int, since: datetime | None = None, until: datetime | None = None
) -> dict[str, int]:
    """Fires per outcome in the window (occurrence_list's rows), every outcome named, 0 for
    those that did not happen: the fires of a window add up to its nominal fires."""
    sums = dict(
        occurrence_list(schedule_id=schedule_id, since=since, until=until)
        .order_by()
        .values_list("outcome")
        .annotate(fires=Coalesce(Sum("fires"), 0))
    )
    return {outcome: sums.get(outcome, 0) for outcome in OccurrenceOutcome.values}


def occurrences_recorded_by_outcome(*, since: datetime) -> dict[str, int]:
    """Fires recorded per outcome since `since`, over every schedule (the metrics' gauge; the
    outcome and recorded_at index serves it)."""
    sums = dict(
        ScheduleOccurrence.objects.filter(recorded_at__gte=since)
        .order_by()
        .values_list("outcome")
        .annotate(fires=Coalesce(Sum("fires"), 0))
    )
    return {outcome: sums.get(outcome, 0) for outcome in OccurrenceOutcome.values}
