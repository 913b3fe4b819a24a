from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q


class ExecutionStatus(models.TextChoices):
    """Spring Batch's BatchStatus, plus QUEUED (waiting for a worker) and SKIPPED (declined)."""

    QUEUED = "QUEUED"
    STARTED = "STARTED"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    ABANDONED = "ABANDONED"
    SKIPPED = "SKIPPED"


# Every set of statuses the code asks about, here beside the enum (execution/lifecycle.py makes
# the transitions between them).
# An attempt owns the execution (a worker claimed it and heartbeats).
RUNNING_STATUSES = (ExecutionStatus.STARTED, ExecutionStatus.STOPPING)
# Not ended yet: waiting for a worker, or running.
ACTIVE_STATUSES = (ExecutionStatus.QUEUED, *RUNNING_STATUSES)
# Ended: no attempt runs again (an operator may still abandon a FAILED or STOPPED one, or
# restart it as a new execution).
FINAL_STATUSES = (
    ExecutionStatus.STOPPED,
    ExecutionStatus.COMPLETED,
    ExecutionStatus.FAILED,
    ExecutionStatus.ABANDONED,
    ExecutionStatus.SKIPPED,
)
# An operator may stop these (a running one is asked to, STOPPING).
STOPPABLE_STATUSES = (ExecutionStatus.QUEUED, ExecutionStatus.STARTED)
# A restart resumes these, and abandoning one makes it final for good.
RESTARTABLE_STATUSES = (ExecutionStatus.FAILED, ExecutionStatus.STOPPED)
# Steps (and partitions) a restart of the instance does not run again.
STEP_DONE_STATUSES = (ExecutionStatus.COMPLETED, ExecutionStatus.ABANDONED)
# Partitions a later attempt of their step puts back in the queue.
PARTITION_REQUEUED_STATUSES = (
    ExecutionStatus.FAILED,
    ExecutionStatus.STOPPED,
    ExecutionStatus.STARTED,
)


class Trigger(models.TextChoices):
    SCHEDULE = "schedule"
    MANUAL = "manual", "Manual (admin)"
    API = "api"
    CLI = "cli", "Command line"
    RESTART = "restart"


class BatchLog(models.Model):
    """One execution of a job (Spring Batch's JobExecution), across all of its attempts."""

    job = models.ForeignKey(
        "batchjobs.BatchJob",
        on_delete=models.CASCADE,
        related_name="executions",
        help_text="The job executed.",
    )
    schedule = models.ForeignKey(
        "batchjobs.BatchSchedule",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="executions",
        help_text="The schedule that fired it; empty for a run started by hand.",
    )
    trigger = models.CharField(
        max_length=16, choices=Trigger.choices, help_text="What started the execution."
    )
    scheduled_for = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The fire time this execution stands for; with the schedule, its unique key.",
    )
    params = models.JSONField(
        default=dict, blank=True, help_text="The job parameters this execution ran with."
    )
    status = models.CharField(
        max_length=16,
        choices=ExecutionStatus.choices,
        default=ExecutionStatus.QUEUED,
        help_text="Where the execution stands; every change is a conditional update.",
    )
    exclusive = models.BooleanField(
        default=False,
        help_text="Taken from the job's overlap policy at creation: may not run beside another.",
    )
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Attempts started so far, counted when a worker claims one."
    )
    max_attempts = models.PositiveSmallIntegerField(
        default=1, help_text="Attempts allowed, taken from the job at creation."
    )
    next_attempt_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a QUEUED execution may be claimed: at once, or after a retry's backoff.",
    )
    published_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a message was last sent for it; the relay resends lost ones.",
    )
    created_at = models.DateTimeField(auto_now_add=True, help_text="When it was queued.")
    started_at = models.DateTimeField(
        null=True, blank=True, help_text="When the first attempt started."
    )
    finished_at = models.DateTimeField(null=True, blank=True, help_text="When it ended.")
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="The running attempt's latest sign of life."
    )
    worker = models.CharField(
        max_length=255, blank=True, help_text="The worker running (or that last ran) it."
    )
    result = models.JSONField(
        null=True,
        blank=True,
        encoder=DjangoJSONEncoder,
        help_text="What the last successful attempt returned.",
    )
    error = models.TextField(blank=True, help_text="Why the execution failed or was skipped.")
    note = models.CharField(
        max_length=500,
        blank=True,
        help_text="How the scheduler made it, e.g. missed fires coalesced into this run.",
    )
    execution_context = models.JSONField(
        default=dict, blank=True, help_text="State saved for a restart (Spring's ExecutionContext)."
    )
    progress_done = models.BigIntegerField(
        null=True, blank=True, help_text="Items done, as reported by the running job."
    )
    progress_total = models.BigIntegerField(
        null=True, blank=True, help_text="Items expected, if the job knows."
    )
    set_aside_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=(
            "When housekeeping (reaper, relay) set the execution aside because processing it "
            "raised; housekeeping leaves it alone from then on."
        ),
    )
    set_aside_reason = models.TextField(
        blank=True, help_text="The error that made housekeeping set the execution aside."
    )
    held_by = models.CharField(
        max_length=300,
        blank=True,
        help_text=(
            'The limit a QUEUED execution waits for ("host:example.com", "queue:reports", '
            '"job:12"); the first run of it to end sends the oldest one waiting.'
        ),
    )
    held_reason = models.CharField(
        max_length=500, blank=True, help_text="Why the execution waits: the limit and its count."
    )
    instance_key = models.CharField(
        max_length=64,
        blank=True,
        db_index=True,
        help_text="Batch jobs: the job instance (job + identifying parameters) it belongs to.",
    )
    restart_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="restarts",
        help_text="The FAILED or STOPPED execution this one restarts.",
    )
    idempotency_key = models.CharField(
        max_length=255,
        blank=True,
        help_text="A caller's key for a manual start: the same key returns the same execution.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who started it by hand.",
    )

    class Meta:
        verbose_name = "execution"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["job", "-created_at"], name="execution_job_recent_idx"),
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status=ExecutionStatus.QUEUED),
                name="execution_queued_idx",
            ),
            models.Index(
                fields=["heartbeat_at"],
                condition=Q(status__in=RUNNING_STATUSES),
                name="execution_running_idx",
            ),
            models.Index(fields=["status", "-created_at"], name="execution_status_idx"),
            # The runs waiting for a limit, oldest first: each run's end wakes the next one.
            models.Index(
                fields=["held_by", "created_at"],
                condition=Q(status=ExecutionStatus.QUEUED) & ~Q(held_by=""),
                name="execution_held_idx",
            ),
            # The few set aside, counted on the dashboard and /metrics without a scan.
            models.Index(
                fields=["set_aside_at"],
                condition=Q(set_aside_at__isnull=False),
                name="execution_set_aside_idx",
            ),
        ]
        constraints = [
            # Invariant 1: one execution per fire, whatever number of beats run.
            models.UniqueConstraint(
                fields=["schedule", "scheduled_for"],
                condition=Q(schedule__isnull=False, scheduled_for__isnull=False),
                name="execution_one_per_fire",
            ),
            # Invariant 6: an exclusive execution never runs beside another of the same job.
            models.UniqueConstraint(
                fields=["job"],
                condition=Q(exclusive=True, status__in=RUNNING_STATUSES),
                name="execution_one_running_exclusive",
            ),
            # A job instance completes at most once.
            models.UniqueConstraint(
                fields=["instance_key"],
                condition=Q(status=ExecutionStatus.COMPLETED) & ~Q(instance_key=""),
                name="execution_instance_completes_once",
            ),
            models.UniqueConstraint(
                fields=["job", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="execution_idempotency_key_unique",
            ),
            models.CheckConstraint(
                condition=Q(status__in=ExecutionStatus.values), name="execution_status_known"
            ),
            models.CheckConstraint(
                condition=Q(attempts__lte=models.F("max_attempts")),
                name="execution_attempts_within_max",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.job.name} {self.status}"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class AttemptStatus(models.TextChoices):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    STOPPED = "STOPPED"
    LOST = "LOST", "Lost (worker died)"


class BatchAttempt(models.Model):
    """One try of an execution: which worker ran it, when, and what came back."""

    execution = models.ForeignKey(
        BatchLog,
        on_delete=models.CASCADE,
        related_name="attempt_rows",
        help_text="The execution this attempt belongs to.",
    )
    number = models.PositiveSmallIntegerField(help_text="1 for the first attempt, and so on.")
    status = models.CharField(
        max_length=16,
        choices=AttemptStatus.choices,
        default=AttemptStatus.RUNNING,
        help_text="How the attempt ended, or RUNNING.",
    )
    worker = models.CharField(max_length=255, blank=True, help_text="The worker that ran it.")
    task_id = models.CharField(max_length=255, blank=True, help_text="The Celery task id.")
    started_at = models.DateTimeField(help_text="When the worker claimed it.")
    finished_at = models.DateTimeField(null=True, blank=True, help_text="When it ended.")
    http_status = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="HTTP jobs: the response status code."
    )
    response_excerpt = models.TextField(
        blank=True, help_text="HTTP jobs: the start of the response body, truncated."
    )
    error = models.TextField(blank=True, help_text="What went wrong, with the traceback.")
    retryable = models.BooleanField(
        null=True, blank=True, help_text="Whether the failure allowed another attempt."
    )

    class Meta:
        verbose_name = "attempt"
        ordering = ["execution", "number"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "number"], name="attempt_number_unique"),
            # Invariant 2: at most one attempt of an execution runs at a time.
            models.UniqueConstraint(
                fields=["execution"],
                condition=Q(status=AttemptStatus.RUNNING),
                name="attempt_one_running",
            ),
            models.CheckConstraint(condition=Q(number__gte=1), name="attempt_number_min_1"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of #{self.execution_id}: {self.status}"

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class StepExecution(models.Model):
    """One step of a batch job's execution, with Spring Batch's counters."""

    execution = models.ForeignKey(
        BatchLog,
        on_delete=models.CASCADE,
        related_name="steps",
        help_text="The job execution this step belongs to.",
    )
    step_name = models.CharField(max_length=200, help_text="The step's name in the job.")
    partition = models.CharField(
        max_length=200, blank=True, help_text="The partition's name, for a partitioned step."
    )
    status = models.CharField(
        max_length=16,
        choices=ExecutionStatus.choices,
        default=ExecutionStatus.STARTED,
        help_text="Where the step stands.",
    )
    exit_status = models.CharField(
        max_length=100, blank=True, help_text="The exit code flow transitions match on."
    )
    read_count = models.BigIntegerField(default=0, help_text="Items read.")
    write_count = models.BigIntegerField(default=0, help_text="Items written.")
    filter_count = models.BigIntegerField(default=0, help_text="Items a processor filtered out.")
    read_skip_count = models.BigIntegerField(default=0, help_text="Items skipped on read.")
    process_skip_count = models.BigIntegerField(default=0, help_text="Items skipped on process.")
    write_skip_count = models.BigIntegerField(default=0, help_text="Items skipped on write.")
    commit_count = models.BigIntegerField(default=0, help_text="Chunks committed.")
    rollback_count = models.BigIntegerField(default=0, help_text="Chunks rolled back.")
    execution_context = models.JSONField(
        default=dict, blank=True, help_text="The step's checkpoint, saved with each chunk commit."
    )
    started_at = models.DateTimeField(null=True, blank=True, help_text="When the step started.")
    finished_at = models.DateTimeField(null=True, blank=True, help_text="When the step ended.")
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="A running partition's latest sign of life."
    )
    error = models.TextField(blank=True, help_text="Why the step failed.")

    class Meta:
        ordering = ["execution", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["execution", "step_name", "partition"], name="step_unique_per_execution"
            ),
            models.CheckConstraint(
                condition=Q(status__in=ExecutionStatus.values), name="step_status_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.step_name} of #{self.execution_id}: {self.status}"
