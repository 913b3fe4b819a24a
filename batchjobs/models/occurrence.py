from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .labels import labelled, named


class OccurrenceOutcome(models.TextChoices):
    """What became of a nominal fire of a schedule."""

    FIRED = "fired", _("Fired (an execution was created)")
    MOVED = "moved", _("Moved by a calendar to a later allowed day (an execution waits for it)")
    SKIPPED_OVERLAP = "skipped_overlap", _("Skipped by the overlap policy")
    COALESCED = "coalesced", _("Missed; coalesced into one run (misfire policy fire_once)")
    MISSED_SKIPPED = "missed_skipped", _("Missed; skipped (misfire policy skip)")
    DROPPED = "dropped", _("Missed; dropped (outside the catch-up window or over its cap)")
    EXCLUDED = "excluded", _("Excluded by a calendar")
    PAUSED = "paused", _("Not fired: the schedule was paused")
    JOB_DISABLED = "job_disabled", _("Not fired: the job was disabled")
    OVER_MAX_RUNS = "over_max_runs", _("Not fired: the schedule reached its max runs")
    DEDUPLICATED = "deduplicated", _("Already fired: its execution existed (fire key)")


@named(_("occurrence"), _("occurrences"))
class ScheduleOccurrence(models.Model):
    """What became of one nominal fire of a schedule, or of a run of consecutive fires with
    the same fate (`fires` > 1, from `scheduled_for` through `last_scheduled_for`), so that a
    long outage of a frequent schedule is a few rows, not millions. The rows of a schedule
    account for each of its nominal fire times once: the key is (schedule, scheduled_for)."""

    schedule = labelled(
        _("schedule"),
        models.ForeignKey(
            "batchjobs.BatchSchedule",
            on_delete=models.CASCADE,
            related_name="occurrences",
            help_text=_("The schedule whose fire this is."),
        ),
    )
    scheduled_for = labelled(
        _("scheduled for"),
        models.DateTimeField(help_text=_("The nominal fire time (the first, for a run of fires).")),
    )
    last_scheduled_for = labelled(
        _("last scheduled for"),
        models.DateTimeField(
            null=True,
            blank=True,
            help_text=_("For a run of fires with one fate: the last nominal fire time in it."),
        ),
    )
    fires = labelled(
        _("fires"),
        models.PositiveIntegerField(
            default=1, help_text=_("How many nominal fires the row stands for (1, or a run).")
        ),
    )
    outcome = labelled(
        _("outcome"),
        models.CharField(
            max_length=16,
            choices=OccurrenceOutcome.choices,
            help_text=_("What became of the fire."),
        ),
    )
    reason = labelled(
        _("reason"),
        models.CharField(
            max_length=500,
            blank=True,
            help_text=_("Why, in words: the policy, the holiday, the execution it went into."),
        ),
    )
    execution = labelled(
        _("execution"),
        models.ForeignKey(
            "batchjobs.BatchLog",
            null=True,
            blank=True,
            on_delete=models.SET_NULL,
            related_name="occurrences",
            help_text=_("The execution the fire made, or was coalesced into."),
        ),
    )
    due_at = labelled(
        _("due at"),
        models.DateTimeField(
            null=True,
            blank=True,
            help_text=_("Moved fires: the instant the execution runs, on the next allowed day."),
        ),
    )
    recorded_at = labelled(
        _("recorded at"),
        models.DateTimeField(help_text=_("When the scheduler recorded the outcome.")),
    )

    class Meta:
        ordering = ["schedule", "-scheduled_for"]
        indexes = [
            models.Index(fields=["outcome", "recorded_at"], name="occurrence_outcome_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "scheduled_for"], name="occurrence_one_per_fire"
            ),
            models.CheckConstraint(
                condition=Q(outcome__in=OccurrenceOutcome.values), name="occurrence_outcome_known"
            ),
            models.CheckConstraint(condition=Q(fires__gte=1), name="occurrence_fires_min_1"),
            models.CheckConstraint(
                condition=Q(fires=1, last_scheduled_for__isnull=True)
                | Q(fires__gt=1, last_scheduled_for__gt=models.F("scheduled_for")),
                name="occurrence_run_has_last",
            ),
        ]

    def __str__(self) -> str:
        return gettext("%(when)s: %(outcome)s") % {
            "when": f"{self.scheduled_for:%Y-%m-%d %H:%M:%S}",
            "outcome": self.get_outcome_display(),
        }
