"""Backfills and their progress, for the admin, the API and the command line."""

from django.db.models import Count, Q, QuerySet
from django.utils.translation import gettext as _

from batchjobs.errors import NotFound
from batchjobs.models import Backfill, BackfillStatus
from batchjobs.models.execution import ACTIVE_STATUSES
from batchjobs.scheduling.backfill import backfill_total_is_estimate
from batchjobs.scheduling.fire_times import Timing


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


def backfill_total_estimated(backfill: Backfill) -> bool:
    """Its total is an estimate (a range of over FIRES_COUNTED_EXACTLY fires of a cron or a
    day interval) until it completes: then it is counted."""
    return backfill.status != BackfillStatus.COMPLETED and backfill_total_is_estimate(
        Timing.of(backfill.schedule), backfill.fires_total
    )


def fires_count_text(count: int, *, estimated: bool) -> str:
    """1,051,200, or "≈ 1,051,200" for an estimate."""
    return f"≈ {count:,}" if estimated else f"{count:,}"


def backfill_progress_text(backfill: Backfill) -> str:
    """ "created 40 of 72, 3 already run, 5 running" (`backfill` from backfill_list); an
    estimated total reads "≈ 1,051,200"."""
    estimated = backfill_total_estimated(backfill)
    values = {
        "created": f"{backfill.fires_created:,}",
        "total": fires_count_text(backfill.fires_total, estimated=estimated),
        "existing": f"{backfill.fires_existing:,}",
        "active": f"{getattr(backfill, 'active', 0):,}",
    }
    return (
        _("created %(created)s of %(total)s, %(existing)s already run, %(active)s running") % values
    )
