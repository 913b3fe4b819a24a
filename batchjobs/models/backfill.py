from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from batchjobs.rules import bounds

from .labels import labelled, named


class BackfillStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    PAUSED = "paused", _("Paused")
    CANCELLED = "cancelled", _("Cancelled")
    COMPLETED = "completed", _("Completed")


# A backfill still creating executions, or able to again.
BACKFILL_OPEN_STATUSES = (BackfillStatus.RUNNING, BackfillStatus.PAUSED)


@named(_("backfill"), _("backfills"))
class Backfill(models.Model):
    """Every nominal fire of a schedule between two past instants, run under the schedule's
    own fire key (schedule, scheduled_for): a fire beat already made is not made again, and
    beat never makes one a backfill made."""

    schedule = labelled(
        _("schedule"),
        models.ForeignKey(
            "batchjobs.BatchSchedule",
            on_delete=models.CASCADE,
            related_name="backfills",
            help_text=_("The schedule whose past fires are run."),
        ),
    )
    range_start = labelled(
        _("from"),
        models.DateTimeField(help_text=_("The first nominal fire time included (inclusive).")),
    )
    range_end = labelled(
        _("to"),
        models.DateTimeField(help_text=_("The last nominal fire time included (inclusive).")),
    )
    max_concurrency = labelled(
        _("max concurrency"),
        models.PositiveIntegerField(
            default=1,
            validators=bounds.between(1, bounds.MAX_BACKFILL_CONCURRENCY),
            help_text=_(
                "At most this many of the backfill's executions queued or running at once."
            ),
        ),
    )
    status = labelled(
        _("status"),
        models.CharField(
            max_length=16,
            choices=BackfillStatus.choices,
            default=BackfillStatus.RUNNING,
            help_text=_("Running, paused (creates nothing until resumed), cancelled or completed."),
        ),
    )
    fires_total = labelled(
        _("fires total"),
        models.PositiveIntegerField(
            default=0, help_text=_("The nominal fire times in the range, counted when created.")
        ),
    )
    fires_created = labelled(
        _("fires created"),
        models.PositiveIntegerField(
            default=0, help_text=_("Fire times given an execution by this backfill so far.")
        ),
    )
    fires_existing = labelled(
        _("fires already run"),
        models.PositiveIntegerField(
            default=0,
            help_text=_(
                "Fire times that already had an execution (beat's or another backfill's), "
                "left as they were."
            ),
        ),
    )
    cursor = labelled(
        _("cursor"),
        models.DateTimeField(
            null=True,
            blank=True,
            help_text=_("The latest nominal fire time handled; the next one comes after it."),
        ),
    )
    params = labelled(
        _("params"),
        models.JSONField(
            default=dict,
            blank=True,
            help_text=_("Parameters merged over the schedule's for each of the backfill's runs."),
        ),
    )
    created_by = labelled(
        _("created by"),
        models.ForeignKey(
            settings.AUTH_USER_MODEL,
            null=True,
            blank=True,
            on_delete=models.SET_NULL,
            related_name="+",
            help_text=_("Who started the backfill."),
        ),
    )
    created_at = labelled(
        _("created at"),
        models.DateTimeField(auto_now_add=True, help_text=_("When it was created.")),
    )
    finished_at = labelled(
        _("finished at"),
        models.DateTimeField(
            null=True, blank=True, help_text=_("When it completed or was cancelled.")
        ),
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(status="running"),
                name="backfill_running_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(range_end__gte=models.F("range_start")),
                name="backfill_range_ordered",
            ),
            models.CheckConstraint(
                condition=Q(status__in=BackfillStatus.values), name="backfill_status_known"
            ),
            models.CheckConstraint(
                condition=Q(max_concurrency__gte=1), name="backfill_concurrency_min_1"
            ),
        ]

    def __str__(self) -> str:
        return gettext("backfill #%(id)s of schedule %(schedule)s") % {
            "id": self.pk,
            "schedule": self.schedule_id,
        }
