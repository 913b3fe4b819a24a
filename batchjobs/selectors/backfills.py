"""Backfills and their progress, for the admin, the API and the command line."""

from django.db.models import Count, Q, QuerySet
from django.utils.translation import gettext as _

from batchjobs.errors import NotFound
from batchjobs.models import Backfill, BackfillStatus
from batchjobs.models.execution import ACTIVE_STATUSES
from batchjobs.rules.bounds import BACKFILL_CONFIRM_FIRES


def backfill_list() -> QuerySet[Backfill]:
    """Newest first, each with `active`: its runs queued or running."""
    return Backfill.objects.select_related("schedule__job", "created_by").annotate(
        active=Count("executions", filter=Q(executions__status__in=ACTIVE_STATUSES))
    )


def backfill_get(*, backfill_id: int) -> Backfill:
    backfill = backfill_list().filter(pk=backfill_id).first()
    if backfill is None:
        raise NotFound(_("no backfill %(id)s") % {"id": backfill_id})
    return backfill


def backfill_total_is_floor(backfill: Backfill) -> bool:
    """A confirmed backfill over the counting bound knows its total once it completes."""
    return backfill.fires_total > BACKFILL_CONFIRM_FIRES and (
        backfill.status != BackfillStatus.COMPLETED
    )


def backfill_progress_text(backfill: Backfill) -> str:
    """ "created 40 of 72, 3 already run, 5 running" (`backfill` from backfill_list)."""
    values = {
        "created": f"{backfill.fires_created:,}",
        "total": f"{backfill.fires_total:,}",
        "existing": f"{backfill.fires_existing:,}",
        "active": f"{getattr(backfill, 'active', 0):,}",
    }
    if backfill_total_is_floor(backfill):
        return (
            _("created %(created)s of over %(total)s, %(existing)s already run, %(active)s running")
            % values
        )
    return (
        _("created %(created)s of %(total)s, %(existing)s already run, %(active)s running") % values
    )
