from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from batchjobs.rules import bounds
from batchjobs.rules.interval import interval_phrase

from .calendar import CalendarPolicy
from .labels import labelled, named


class ScheduleKind(models.TextChoices):
    ONCE = "once", _("Once (now, after a delay, or at a date and time)")
    INTERVAL = "interval", _("Every N units")
    CRON = "cron", _("Cron expression")


class IntervalUnit(models.TextChoices):
    SECONDS = "seconds", _("Seconds")
    MINUTES = "minutes", _("Minutes")
    HOURS = "hours", _("Hours")
    DAYS = "days", _("Days")


class MisfirePolicy(models.TextChoices):
    FIRE_ONCE = "fire_once", _("Fire once now for all missed fires")
    SKIP = "skip", _("Skip missed fires; wait for the next one")
    CATCH_UP = "catch_up", _("Run every missed fire within the catch-up window, capped")


class DstGapPolicy(models.TextChoices):
    SKIP = "skip", _("Skip that day's run (the local time does not exist)")
    SHIFT = "shift", _("Run at the first instant after the gap")


class DstFoldPolicy(models.TextChoices):
    FIRST = "first", _("Run once, at the first occurrence")
    BOTH = "both", _("Run at both occurrences")


@named(_("schedule"), _("schedules"))
class BatchSchedule(models.Model):
    """When a job runs. Beat turns each due fire into one execution (one per scheduled_for)."""

    job = labelled(
        _("job"),
        models.ForeignKey(
            "batchjobs.BatchJob",
            on_delete=models.CASCADE,
            related_name="schedules",
            help_text=_("The job this schedule fires."),
        ),
    )
    description = labelled(
        _("description"),
        models.CharField(
            max_length=200, blank=True, help_text=_("An optional label for operators.")
        ),
    )
    kind = labelled(
        _("kind"),
        models.CharField(
            max_length=16, choices=ScheduleKind.choices, help_text=_("How fire times are computed.")
        ),
    )
    run_at = labelled(
        _("run at"),
        models.DateTimeField(
            null=True, blank=True, help_text=_("Once: the instant to fire (now, or after a delay).")
        ),
    )
    delay_seconds = labelled(
        _("delay"),
        models.FloatField(
            null=True,
            blank=True,
            editable=False,
            help_text=_(
                "Once, given as a delay: the seconds from when run_at was set to run_at; empty "
                "when run_at was given as a date and time."
            ),
        ),
    )
    interval_every = labelled(
        _("interval every"),
        models.PositiveIntegerField(
            null=True,
            blank=True,
            # The bound per unit (100 years) is checked with the unit, in schedule validation.
            validators=bounds.between(1, bounds.MAX_RUNS),
            help_text=_("Interval: fire every this many units (at most 100 years in all)."),
        ),
    )
    interval_unit = labelled(
        _("interval unit"),
        models.CharField(
            max_length=8,
            choices=IntervalUnit.choices,
            default=IntervalUnit.MINUTES,
            help_text=_(
                "Interval: the unit of interval_every; days are calendar days in the time zone."
            ),
        ),
    )
    cron_expression = labelled(
        _("cron expression"),
        models.CharField(
            max_length=200,
            blank=True,
            help_text=_("Cron: 5 fields (minute hour day month weekday) or 6 with seconds first."),
        ),
    )
    timezone = labelled(
        _("timezone"),
        models.CharField(
            max_length=64,
            default="UTC",
            help_text=_("IANA time zone the cron expression, days and DST policy are read in."),
        ),
    )
    start_at = labelled(
        _("start at"),
        models.DateTimeField(
            null=True,
            blank=True,
            help_text=_(
                "No fire before this instant; intervals are anchored here, so they never drift."
            ),
        ),
    )
    end_at = labelled(
        _("end at"),
        models.DateTimeField(null=True, blank=True, help_text=_("No fire after this instant.")),
    )
    max_runs = labelled(
        _("max runs"),
        models.PositiveIntegerField(
            validators=bounds.between(1, bounds.MAX_RUNS),
            null=True,
            blank=True,
            help_text=_("Stop after this many fires (empty: no limit)."),
        ),
    )
    run_count = labelled(
        _("run count"), models.PositiveIntegerField(default=0, help_text=_("Fires so far."))
    )
    paused = labelled(
        _("paused"),
        models.BooleanField(default=False, help_text=_("A paused schedule does not fire.")),
    )
    misfire_policy = labelled(
        _("misfire policy"),
        models.CharField(
            max_length=16,
            choices=MisfirePolicy.choices,
            default=MisfirePolicy.FIRE_ONCE,
            help_text=_("What to do with fires missed while beat was down or the schedule paused."),
        ),
    )
    misfire_grace_seconds = labelled(
        _("misfire grace seconds"),
        models.PositiveIntegerField(
            validators=bounds.between(0, bounds.MAX_MISFIRE_GRACE_SECONDS, unit="seconds"),
            default=60,
            help_text=_("A fire later than this after its time counts as missed."),
        ),
    )
    catch_up_window_seconds = labelled(
        _("catch up window seconds"),
        models.PositiveIntegerField(
            validators=bounds.between(0, bounds.MAX_CATCH_UP_WINDOW_SECONDS, unit="seconds"),
            default=3600,
            help_text=_("catch_up: only missed fires this recent are run."),
        ),
    )
    catch_up_max = labelled(
        _("catch up max"),
        models.PositiveIntegerField(
            validators=bounds.between(0, bounds.MAX_CATCH_UP_RUNS),
            default=100,
            help_text=_("catch_up: at most this many missed fires are run."),
        ),
    )
    dst_gap_policy = labelled(
        _("dst gap policy"),
        models.CharField(
            max_length=8,
            choices=DstGapPolicy.choices,
            default=DstGapPolicy.SKIP,
            help_text=_("A fixed local time that does not exist on a spring-forward day."),
        ),
    )
    dst_fold_policy = labelled(
        _("dst fold policy"),
        models.CharField(
            max_length=8,
            choices=DstFoldPolicy.choices,
            default=DstFoldPolicy.FIRST,
            help_text=_("A fixed local time that occurs twice on a fall-back day."),
        ),
    )
    jitter_seconds = labelled(
        _("jitter seconds"),
        models.PositiveIntegerField(
            validators=bounds.between(0, bounds.MAX_JITTER_SECONDS, unit="seconds"),
            default=0,
            help_text=_("Delay each fire by up to this many seconds, fixed per schedule."),
        ),
    )
    calendars = labelled(
        _("calendars"),
        models.ManyToManyField(
            "batchjobs.Calendar",
            blank=True,
            related_name="schedules",
            help_text=_("Days these calendars exclude get no fire (see the calendar policy)."),
        ),
    )
    calendar_policy = labelled(
        _("calendar policy"),
        models.CharField(
            max_length=8,
            choices=CalendarPolicy.choices,
            default=CalendarPolicy.SKIP,
            help_text=_("What becomes of a fire on an excluded day: skipped, or moved."),
        ),
    )
    paused_at = labelled(
        _("paused at"),
        models.DateTimeField(
            null=True,
            blank=True,
            help_text=_(
                "When it was paused: the fires from then to its resume are recorded paused."
            ),
        ),
    )
    params = labelled(
        _("params"),
        models.JSONField(
            default=dict, blank=True, help_text=_("Parameters merged over the job's for each fire.")
        ),
    )
    next_fire_at = labelled(
        _("next fire at"),
        models.DateTimeField(
            null=True,
            blank=True,
            help_text=_("The next due instant (UTC); empty once the schedule has finished."),
        ),
    )
    previous_fire_at = labelled(
        _("previous fire at"),
        models.DateTimeField(
            null=True,
            blank=True,
            help_text=_(
                "The nominal fire before next_fire_at, where the next run's data interval starts; "
                "empty until beat works it out (after the schedule is saved)."
            ),
        ),
    )
    last_fire_at = labelled(
        _("last fire at"),
        models.DateTimeField(
            null=True, blank=True, help_text=_("The scheduled time of the latest fire.")
        ),
    )
    set_aside_at = labelled(
        _("set aside at"),
        models.DateTimeField(
            null=True,
            blank=True,
            help_text=_(
                "When beat set the schedule aside because computing its fires raised; it does not "
                "fire again until it is saved (which clears this)."
            ),
        ),
    )
    set_aside_reason = labelled(
        _("set aside reason"),
        models.TextField(
            blank=True, help_text=_("The error that made beat set the schedule aside.")
        ),
    )
    created_at = labelled(
        _("created at"),
        models.DateTimeField(auto_now_add=True, help_text=_("When it was created.")),
    )
    updated_at = labelled(
        _("updated at"),
        models.DateTimeField(auto_now=True, help_text=_("When it was last changed.")),
    )

    class Meta:
        ordering = ["job__name", "id"]
        indexes = [
            # The due query reads only live schedules, in fire order.
            models.Index(
                fields=["next_fire_at"],
                condition=Q(paused=False, next_fire_at__isnull=False),
                name="schedule_due_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=ScheduleKind.values), name="schedule_kind_known"
            ),
            models.CheckConstraint(
                condition=~Q(kind=ScheduleKind.ONCE) | Q(run_at__isnull=False),
                name="schedule_once_has_run_at",
            ),
            models.CheckConstraint(
                condition=~Q(kind=ScheduleKind.INTERVAL) | Q(interval_every__gt=0),
                name="schedule_interval_positive",
            ),
            models.CheckConstraint(
                condition=~Q(kind=ScheduleKind.CRON) | ~Q(cron_expression=""),
                name="schedule_cron_has_expression",
            ),
            models.CheckConstraint(
                condition=Q(start_at__isnull=True)
                | Q(end_at__isnull=True)
                | Q(end_at__gt=models.F("start_at")),
                name="schedule_end_after_start",
            ),
            models.CheckConstraint(
                condition=Q(max_runs__isnull=True) | Q(max_runs__gte=1),
                name="schedule_max_runs_min_1",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.job.name}: {self.summary}"

    @property
    def summary(self) -> str:
        if self.kind == ScheduleKind.ONCE:
            if not self.run_at:
                return gettext("once")
            return gettext("once at %(when)s") % {"when": f"{self.run_at:%Y-%m-%d %H:%M:%S %Z}"}
        if self.kind == ScheduleKind.INTERVAL:
            return interval_phrase(self.interval_every, self.interval_unit)
        return gettext("cron '%(expression)s' %(zone)s") % {
            "expression": self.cron_expression,
            "zone": self.timezone,
        }
