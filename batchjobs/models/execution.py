from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .labels import labelled, named


class ExecutionStatus(models.TextChoices):
    """Spring Batch's BatchStatus, plus QUEUED (waiting for a worker) and SKIPPED (declined)."""

    QUEUED = "QUEUED", _("Queued")
    STARTED = "STARTED", _("Started")
    STOPPING = "STOPPING", _("Stopping")
    STOPPED = "STOPPED", _("Stopped")
    COMPLETED = "COMPLETED", _("Completed")
    FAILED = "FAILED", _("Failed")
    ABANDONED = "ABANDONED", _("Abandoned")
    SKIPPED = "SKIPPED", _("Skipped")


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
    SCHEDULE = "schedule", _("Schedule")
    MANUAL = "manual", _("Manual (admin)")
    API = "api", _("Api")
    CLI = "cli", _("Command line")
    RESTART = "restart", _("Restart")
    DEPENDENCY = "dependency", _("Dependency (an upstream job ended)")
    BACKFILL = "backfill", _("Backfill")


@named(plural=_("executions"))
class BatchLog(models.Model):
    """One execution of a job (Spring Batch's JobExecution), across all of its attempts."""

    job = labelled(
        _("job"),
        models.ForeignKey(
            "batchjobs.BatchJob",
            on_delete=models.CASCADE,
            related_name="executions",
            help_text=_("The job executed."),
        ),
    )
    schedule = labelled(
        _("schedule"),
        models.ForeignKey(
            "batchjobs.BatchSchedule",
            null=True,
            blank=True,
            on_delete=models.SET_NULL,
            related_name="executions",
            help_text=_("The schedule that fired it; empty for a run started by hand."),
        ),
    )
    trigger = labelled(
        _("trigger"),
        models.CharField(
            max_length=16, choices=Trigger.choices, help_text=_("What started the execution.")
        ),
    )
    scheduled_for = labelled(
        _("scheduled for"),
        models.DateTimeField(
            null=True,
            blank=True,
            help_text=_(
                "The fire time this execution stands for; with the schedule, its unique key."
            ),
        ),
    )
    params = labelled(
        _("params"),
        models.JSONField(
            default=dict, blank=True, help_text=_("The job parameters this execution ran with.")
        ),
    )
    status = labelled(
        _("status"),
        models.CharField(
            max_length=16,
            choices=ExecutionStatus.choices,
            default=ExecutionStatus.QUEUED,
            help_text=_("Where the execution stands; every change is a conditional update."),
        ),
    )
    exclusive = labelled(
        _("exclusive"),
        models.BooleanField(
            default=False,
            help_text=_(
                "Taken from the job's overlap policy at creation: may not run beside another."
            ),
        ),
    )
    attempts = labelled(
        _("attempts"),
        models.PositiveSmallIntegerField(
            default=0, help_text=_("Attempts started so far, counted when a worker claims one.")
        ),
    )
    max_attempts = labelled(
        _("max attempts"),
        models.PositiveSmallIntegerField(
            default=1, help_text=_("Attempts allowed, taken from the job at creation.")
        ),
    )
    next_attempt_at = labelled(
        _("next attempt at"),
        models.DateTimeField(
            null=True,
            blank=True,
            help_text=_(
                "When a QUEUED execution may be claimed: at once, or after a retry's backoff."
            ),
        ),
    )
    published_at = labelled(
        _("published at"),
        models.DateTimeField(
            null=True,
            blank=True,
            help_text=_("When a message was last sent for it; the relay resends lost ones."),
        ),
    )
    created_at = labelled(
        _("created at"), models.DateTimeField(auto_now_add=True, help_text=_("When it was queued."))
    )
    started_at = labelled(
        _("started at"),
        models.DateTimeField(null=True, blank=True, help_text=_("When the first attempt started.")),
    )
    finished_at = labelled(
        _("finished at"), models.DateTimeField(null=True, blank=True, help_text=_("When it ended."))
    )
    heartbeat_at = labelled(
        _("heartbeat at"),
        models.DateTimeField(
            null=True, blank=True, help_text=_("The running attempt's latest sign of life.")
        ),
    )
    worker = labelled(
        _("worker"),
        models.CharField(
            max_length=255, blank=True, help_text=_("The worker running (or that last ran) it.")
        ),
    )
    result = labelled(
        _("result"),
        models.JSONField(
            null=True,
            blank=True,
            encoder=DjangoJSONEncoder,
            help_text=_("What the last successful attempt returned."),
        ),
    )
    error = labelled(
        _("error"),
        models.TextField(blank=True, help_text=_("Why the execution failed or was skipped.")),
    )
    note = labelled(
        _("note"),
        models.CharField(
            max_length=500,
            blank=True,
            help_text=_("How the scheduler made it, e.g. missed fires coalesced into this run."),
        ),
    )
    execution_context = labelled(
        _("execution context"),
        models.JSONField(
            default=dict,
            blank=True,
            help_text=_("State saved for a restart (Spring's ExecutionContext)."),
        ),
    )
    progress_done = labelled(
        _("progress done"),
        models.BigIntegerField(
            null=True, blank=True, help_text=_("Items done, as reported by the running job.")
        ),
    )
    progress_total = labelled(
        _("progress total"),
        models.BigIntegerField(
            null=True, blank=True, help_text=_("Items expected, if the job knows.")
        ),
    )
    set_aside_at = labelled(
        _("set aside at"),
        models.DateTimeField(
            null=True,
            blank=True,
            help_text=_(
                "When housekeeping (reaper, relay) set the execution aside because processing it "
                "raised; housekeeping leaves it alone from then on."
            ),
        ),
    )
    set_aside_reason = labelled(
        _("set aside reason"),
        models.TextField(
            blank=True, help_text=_("The error that made housekeeping set the execution aside.")
        ),
    )
    held_by = labelled(
        _("held by"),
        models.CharField(
            max_length=300,
            blank=True,
            help_text=_(
                'The limit a QUEUED execution waits for ("host:example.com", "queue:reports", '
                '"job:12"); the first run of it to end sends the oldest one waiting.'
            ),
        ),
    )
    held_reason = labelled(
        _("held reason"),
        models.CharField(
            max_length=500,
            blank=True,
            help_text=_("Why the execution waits: the limit and its count."),
        ),
    )
    instance_key = labelled(
        _("instance key"),
        models.CharField(
            max_length=64,
            blank=True,
            db_index=True,
            help_text=_(
                "Batch jobs: the job instance (job + identifying parameters) it belongs to."
            ),
        ),
    )
    restart_of = labelled(
        _("restart of"),
        models.ForeignKey(
            "self",
            null=True,
            blank=True,
            on_delete=models.SET_NULL,
            related_name="restarts",
            help_text=_("The FAILED or STOPPED execution this one restarts."),
        ),
    )
    idempotency_key = labelled(
        _("idempotency key"),
        models.CharField(
            max_length=255,
            blank=True,
            help_text=_(
                "A caller's key for a manual start: the same key returns the same execution."
            ),
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
            help_text=_("Who started it by hand."),
        ),
    )
    logical_time = labelled(
        _("logical time"),
        models.DateTimeField(
            null=True,
            blank=True,
            help_text=_(
                "The instant the run stands for: the fire time of a scheduled run, the upstream's "
                "logical time for a dependency, the start time of a manual run."
            ),
        ),
    )
    data_interval_start = labelled(
        _("data interval start"),
        models.DateTimeField(
            null=True,
            blank=True,
            help_text=_("The period processed: from the schedule's previous nominal fire..."),
        ),
    )
    data_interval_end = labelled(
        _("data interval end"),
        models.DateTimeField(null=True, blank=True, help_text=_("...to this run's logical time.")),
    )
    triggered_by = labelled(
        _("triggered by"),
        models.ForeignKey(
            "self",
            null=True,
            blank=True,
            on_delete=models.SET_NULL,
            related_name="triggered",
            help_text=_("The upstream execution whose end started this one (dependencies)."),
        ),
    )
    dependency = labelled(
        _("dependency"),
        models.ForeignKey(
            "batchjobs.JobDependency",
            null=True,
            blank=True,
            on_delete=models.SET_NULL,
            related_name="executions",
            help_text=_("The dependency edge that started this execution."),
        ),
    )
    backfill = labelled(
        _("backfill"),
        models.ForeignKey(
            "batchjobs.Backfill",
            null=True,
            blank=True,
            on_delete=models.SET_NULL,
            related_name="executions",
            help_text=_("The backfill that created this execution."),
        ),
    )
    start_key = labelled(
        _("start key"),
        models.CharField(
            max_length=200,
            blank=True,
            help_text=_(
                "Runs started by another run: a key unique per upstream execution and edge (or "
                "per fan-in and logical time), so each is started once."
            ),
        ),
    )

    class Meta:
        verbose_name = _("execution")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["job", "-created_at"], name="execution_job_recent_idx"),
            # The console's list, newest first (the ordering above), without sorting the table.
            # On PostgreSQL, migration 0017 also adds trigram indexes on UPPER(error) and
            # UPPER(worker) for the search in error text (icontains); SQLite has no such index.
            models.Index(fields=["-created_at", "-id"], name="execution_recent_idx"),
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
            # Invariant 13: a run started by another run is started once.
            models.UniqueConstraint(
                fields=["start_key"],
                condition=~Q(start_key=""),
                name="execution_start_key_unique",
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
    RUNNING = "RUNNING", _("Running")
    SUCCEEDED = "SUCCEEDED", _("Succeeded")
    FAILED = "FAILED", _("Failed")
    TIMED_OUT = "TIMED_OUT", _("Timed Out")
    STOPPED = "STOPPED", _("Stopped")
    LOST = "LOST", _("Lost (worker died)")


@named(plural=_("attempts"))
class BatchAttempt(models.Model):
    """One try of an execution: which worker ran it, when, and what came back."""

    execution = labelled(
        _("execution"),
        models.ForeignKey(
            BatchLog,
            on_delete=models.CASCADE,
            related_name="attempt_rows",
            help_text=_("The execution this attempt belongs to."),
        ),
    )
    number = labelled(
        _("number"),
        models.PositiveSmallIntegerField(help_text=_("1 for the first attempt, and so on.")),
    )
    status = labelled(
        _("status"),
        models.CharField(
            max_length=16,
            choices=AttemptStatus.choices,
            default=AttemptStatus.RUNNING,
            help_text=_("How the attempt ended, or RUNNING."),
        ),
    )
    worker = labelled(
        _("worker"),
        models.CharField(max_length=255, blank=True, help_text=_("The worker that ran it.")),
    )
    task_id = labelled(
        _("task id"),
        models.CharField(max_length=255, blank=True, help_text=_("The Celery task id.")),
    )
    started_at = labelled(
        _("started at"), models.DateTimeField(help_text=_("When the worker claimed it."))
    )
    finished_at = labelled(
        _("finished at"), models.DateTimeField(null=True, blank=True, help_text=_("When it ended."))
    )
    http_status = labelled(
        _("http status"),
        models.PositiveSmallIntegerField(
            null=True, blank=True, help_text=_("HTTP jobs: the response status code.")
        ),
    )
    response_excerpt = labelled(
        _("response excerpt"),
        models.TextField(
            blank=True, help_text=_("HTTP jobs: the start of the response body, truncated.")
        ),
    )
    error = labelled(
        _("error"),
        models.TextField(blank=True, help_text=_("What went wrong, with the traceback.")),
    )
    request = labelled(
        _("request"),
        models.JSONField(
            null=True,
            blank=True,
            help_text=_(
                "HTTP jobs: the request as sent (method, URL, headers with secrets masked, body "
                "excerpt), after fire-time templates were filled in."
            ),
        ),
    )
    log_lines_dropped = labelled(
        _("log lines dropped"),
        models.PositiveIntegerField(
            default=0,
            help_text=_(
                "Log lines the attempt wrote beyond the per-attempt cap, counted but not kept."
            ),
        ),
    )
    retryable = labelled(
        _("retryable"),
        models.BooleanField(
            null=True, blank=True, help_text=_("Whether the failure allowed another attempt.")
        ),
    )

    class Meta:
        verbose_name = _("attempt")
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
        return gettext("attempt %(number)s of #%(execution)s: %(status)s") % {
            "number": self.number,
            "execution": self.execution_id,
            "status": self.status,
        }

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


@named(_("attempt log line"), _("attempt log lines"))
class AttemptLogLine(models.Model):
    """One line an attempt logged (handler and batch-step logging, the HTTP call's request and
    answer), written while it runs so that the console can follow it; secrets masked, the
    number of lines and each line's length capped."""

    attempt = labelled(
        _("attempt"),
        models.ForeignKey(
            BatchAttempt,
            on_delete=models.CASCADE,
            related_name="log_lines",
            help_text=_("The attempt that logged it."),
        ),
    )
    number = labelled(
        _("number"),
        models.PositiveIntegerField(help_text=_("1 for the attempt's first line, and so on.")),
    )
    logged_at = labelled(
        _("logged at"), models.DateTimeField(help_text=_("When the line was logged."))
    )
    level = labelled(
        _("level"),
        models.PositiveSmallIntegerField(
            help_text=_("The logging level: 10 debug, 20 info, 30 warning, 40 error, 50 critical.")
        ),
    )
    logger = labelled(
        _("logger"),
        models.CharField(max_length=200, blank=True, help_text=_("The logger's name.")),
    )
    message = labelled(
        _("message"),
        models.TextField(help_text=_("The line, with secrets masked and its length capped.")),
    )

    class Meta:
        ordering = ["attempt", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["attempt", "number"], name="attempt_log_line_number_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.logged_at:%H:%M:%S} {self.message[:80]}"


@named(_("step execution"), _("step executions"))
class StepExecution(models.Model):
    """One step of a batch job's execution, with Spring Batch's counters."""

    execution = labelled(
        _("execution"),
        models.ForeignKey(
            BatchLog,
            on_delete=models.CASCADE,
            related_name="steps",
            help_text=_("The job execution this step belongs to."),
        ),
    )
    step_name = labelled(
        _("step name"), models.CharField(max_length=200, help_text=_("The step's name in the job."))
    )
    partition = labelled(
        _("partition"),
        models.CharField(
            max_length=200, blank=True, help_text=_("The partition's name, for a partitioned step.")
        ),
    )
    status = labelled(
        _("status"),
        models.CharField(
            max_length=16,
            choices=ExecutionStatus.choices,
            default=ExecutionStatus.STARTED,
            help_text=_("Where the step stands."),
        ),
    )
    exit_status = labelled(
        _("exit status"),
        models.CharField(
            max_length=100, blank=True, help_text=_("The exit code flow transitions match on.")
        ),
    )
    read_count = labelled(
        _("read count"), models.BigIntegerField(default=0, help_text=_("Items read."))
    )
    write_count = labelled(
        _("write count"), models.BigIntegerField(default=0, help_text=_("Items written."))
    )
    filter_count = labelled(
        _("filter count"),
        models.BigIntegerField(default=0, help_text=_("Items a processor filtered out.")),
    )
    read_skip_count = labelled(
        _("read skip count"),
        models.BigIntegerField(default=0, help_text=_("Items skipped on read.")),
    )
    process_skip_count = labelled(
        _("process skip count"),
        models.BigIntegerField(default=0, help_text=_("Items skipped on process.")),
    )
    write_skip_count = labelled(
        _("write skip count"),
        models.BigIntegerField(default=0, help_text=_("Items skipped on write.")),
    )
    commit_count = labelled(
        _("commit count"), models.BigIntegerField(default=0, help_text=_("Chunks committed."))
    )
    rollback_count = labelled(
        _("rollback count"), models.BigIntegerField(default=0, help_text=_("Chunks rolled back."))
    )
    execution_context = labelled(
        _("execution context"),
        models.JSONField(
            default=dict,
            blank=True,
            help_text=_("The step's checkpoint, saved with each chunk commit."),
        ),
    )
    started_at = labelled(
        _("started at"),
        models.DateTimeField(null=True, blank=True, help_text=_("When the step started.")),
    )
    finished_at = labelled(
        _("finished at"),
        models.DateTimeField(null=True, blank=True, help_text=_("When the step ended.")),
    )
    heartbeat_at = labelled(
        _("heartbeat at"),
        models.DateTimeField(
            null=True, blank=True, help_text=_("A running partition's latest sign of life.")
        ),
    )
    error = labelled(_("error"), models.TextField(blank=True, help_text=_("Why the step failed.")))

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
        return gettext("%(step)s of #%(execution)s: %(status)s") % {
            "step": self.step_name,
            "execution": self.execution_id,
            "status": self.status,
        }
