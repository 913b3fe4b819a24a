from django.db import models
from django.db.models import Q

from batchjobs.rules import bounds


class ScheduleKind(models.TextChoices):
    ONCE = "once", "Once (now, after a delay, or at a date and time)"
    INTERVAL = "interval", "Every N units"
    CRON = "cron", "Cron expression"


class IntervalUnit(models.TextChoices):
    SECONDS = "seconds"
    MINUTES = "minutes"
    HOURS = "hours"
    DAYS = "days"


class MisfirePolicy(models.TextChoices):
    FIRE_ONCE = "fire_once", "Fire once now for all missed fires"
    SKIP = "skip", "Skip missed fires; wait for the next one"
    CATCH_UP = "catch_up", "Run every missed fire within the catch-up window, capped"


class DstGapPolicy(models.TextChoices):
    SKIP = "skip", "Skip that day's run (the local time does not exist)"
    SHIFT = "shift", "Run at the first instant after the gap"


class DstFoldPolicy(models.TextChoices):
    FIRST = "first", "Run once, at the first occurrence"
    BOTH = "both", "Run at both occurrences"


class BatchSchedule(models.Model):
    """When a job runs. Beat turns each due fire into one execution (one per scheduled_for)."""

    job = models.ForeignKey(
        "batchjobs.BatchJob",
        on_delete=models.CASCADE,
        related_name="schedules",
        help_text="The job this schedule fires.",
    )
    description = models.CharField(
        max_length=200, blank=True, help_text="An optional label for operators."
    )
    kind = models.CharField(
        max_length=16, choices=ScheduleKind.choices, help_text="How fire times are computed."
    )
    run_at = models.DateTimeField(
        null=True, blank=True, help_text="Once: the instant to fire (now, or after a delay)."
    )
    interval_every = models.PositiveIntegerField(
        null=True,
        blank=True,
        # The bound per unit (100 years) is checked with the unit, in schedule validation.
        validators=bounds.between(1, bounds.MAX_RUNS),
        help_text="Interval: fire every this many units (at most 100 years in all).",
    )
    interval_unit = models.CharField(
        max_length=8,
        choices=IntervalUnit.choices,
        default=IntervalUnit.MINUTES,
        help_text="Interval: the unit of interval_every; days are calendar days in the time zone.",
    )
    cron_expression = models.CharField(
        max_length=200,
        blank=True,
        help_text="Cron: 5 fields (minute hour day month weekday) or 6 with seconds first.",
    )
    timezone = models.CharField(
        max_length=64,
        default="UTC",
        help_text="IANA time zone the cron expression, days and DST policy are read in.",
    )
    start_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="No fire before this instant; intervals are anchored here, so they never drift.",
    )
    end_at = models.DateTimeField(null=True, blank=True, help_text="No fire after this instant.")
    max_runs = models.PositiveIntegerField(
        validators=bounds.between(1, bounds.MAX_RUNS),
        null=True,
        blank=True,
        help_text="Stop after this many fires (empty: no limit).",
    )
    run_count = models.PositiveIntegerField(default=0, help_text="Fires so far.")
    paused = models.BooleanField(default=False, help_text="A paused schedule does not fire.")
    misfire_policy = models.CharField(
        max_length=16,
        choices=MisfirePolicy.choices,
        default=MisfirePolicy.FIRE_ONCE,
        help_text="What to do with fires missed while beat was down or the schedule paused.",
    )
    misfire_grace_seconds = models.PositiveIntegerField(
        validators=bounds.between(0, bounds.MAX_MISFIRE_GRACE_SECONDS, unit="seconds"),
        default=60,
        help_text="A fire later than this after its time counts as missed.",
    )
    catch_up_window_seconds = models.PositiveIntegerField(
        validators=bounds.between(0, bounds.MAX_CATCH_UP_WINDOW_SECONDS, unit="seconds"),
        default=3600,
        help_text="catch_up: only missed fires this recent are run.",
    )
    catch_up_max = models.PositiveIntegerField(
        validators=bounds.between(0, bounds.MAX_CATCH_UP_RUNS),
        default=100,
        help_text="catch_up: at most this many missed fires are run.",
    )
    dst_gap_policy = models.CharField(
        max_length=8,
        choices=DstGapPolicy.choices,
        default=DstGapPolicy.SKIP,
        help_text="A fixed local time that does not exist on a spring-forward day.",
    )
    dst_fold_policy = models.CharField(
        max_length=8,
        choices=DstFoldPolicy.choices,
        default=DstFoldPolicy.FIRST,
        help_text="A fixed local time that occurs twice on a fall-back day.",
    )
    jitter_seconds = models.PositiveIntegerField(
        validators=bounds.between(0, bounds.MAX_JITTER_SECONDS, unit="seconds"),
        default=0,
        help_text="Delay each fire by up to this many seconds, fixed per schedule.",
    )
    params = models.JSONField(
        default=dict, blank=True, help_text="Parameters merged over the job's for each fire."
    )
    next_fire_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The next due instant (UTC); empty once the schedule has finished.",
    )
    last_fire_at = models.DateTimeField(
        null=True, blank=True, help_text="The scheduled time of the latest fire."
    )
    set_aside_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=(
            "When beat set the schedule aside because computing its fires raised; it does not "
            "fire again until it is saved (which clears this)."
        ),
    )
    set_aside_reason = models.TextField(
        blank=True, help_text="The error that made beat set the schedule aside."
    )
    created_at = models.DateTimeField(auto_now_add=True, help_text="When it was created.")
    updated_at = models.DateTimeField(auto_now=True, help_text="When it was last changed.")

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
            return f"once at {self.run_at:%Y-%m-%d %H:%M:%S %Z}" if self.run_at else "once"
        if self.kind == ScheduleKind.INTERVAL:
            return f"every {self.interval_every} {self.interval_unit}"
        return f"cron '{self.cron_expression}' {self.timezone}"
