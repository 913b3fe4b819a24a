from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from batchjobs.rules import bounds
from batchjobs.rules.url import UrlRefused, http_url_parse


class JobKind(models.TextChoices):
    HTTP = "http", "HTTP call"
    HANDLER = "handler", "Python handler"
    BATCH = "batch", "Batch job (steps)"


def default_queue(kind: str) -> str:
    """The queue a job of `kind` goes to unless it names one: HTTP calls to the I/O lane,
    where one worker process keeps hundreds in flight; the rest to the prefork workers."""
    if kind == JobKind.HTTP:
        return settings.BATCHJOBS_HTTP_QUEUE
    return settings.CELERY_TASK_DEFAULT_QUEUE


def url_host(url: str) -> str:
    """The host an HTTP job's URL names ("" if the URL is refused: validation says why)."""
    try:
        return http_url_parse(url).host
    except UrlRefused:
        return ""


class HttpMethod(models.TextChoices):
    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"
    HEAD = "HEAD"


class AssertionKind(models.TextChoices):
    NONE = "", "None"
    REGEX = "regex", "Body matches a regular expression"
    JSON_PATH = "json_path", "JSON path equals a value"


class OverlapPolicy(models.TextChoices):
    ALLOW = "allow", "Allow: runs may overlap"
    SKIP = "skip", "Skip: a run that would overlap is recorded SKIPPED"
    QUEUE = "queue", "Queue: a run that would overlap waits for the running one"


job_name_validator = RegexValidator(
    r"^[\w][\w .:@+-]*$",
    "Use letters, digits, spaces and . : @ + - _ ; start with a letter, digit or _.",
)


class BatchJob(models.Model):
    """What to run (an HTTP call, a handler or a batch job) and how: the run policy."""

    name = models.CharField(
        max_length=200,
        unique=True,
        validators=[job_name_validator],
        help_text="Unique name, used to start the job from the API and the command line.",
    )
    description = models.TextField(blank=True, help_text="What the job does, for operators.")
    kind = models.CharField(
        max_length=16, choices=JobKind.choices, help_text="What kind of work the job runs."
    )
    enabled = models.BooleanField(
        default=True, help_text="A disabled job is not fired by its schedules nor started."
    )

    http_method = models.CharField(
        max_length=8,
        choices=HttpMethod.choices,
        default=HttpMethod.GET,
        help_text="HTTP jobs: the request method.",
    )
    http_url = models.CharField(
        max_length=2000, blank=True, help_text="HTTP jobs: the http:// or https:// URL to call."
    )
    http_headers = models.JSONField(
        default=list,
        blank=True,
        help_text=(
            'HTTP jobs: a list of {"name": ..., "value": ..., "secret": true|false}; '
            "secret values are masked wherever they are shown."
        ),
    )
    http_body = models.TextField(blank=True, help_text="HTTP jobs: the request body, sent as is.")
    http_expected_status = models.CharField(
        max_length=200,
        default="200-299",
        help_text="HTTP jobs: status codes that count as success, e.g. '200-299' or '200,202,304'.",
    )
    http_assertion_kind = models.CharField(
        max_length=16,
        choices=AssertionKind.choices,
        default=AssertionKind.NONE,
        blank=True,
        help_text="HTTP jobs: an optional check of the response body on top of its status.",
    )
    http_assertion = models.CharField(
        max_length=500,
        blank=True,
        help_text="HTTP jobs: the regular expression, or the JSON path such as $.data.items[0].id.",
    )
    http_assertion_value = models.CharField(
        max_length=500,
        blank=True,
        help_text='HTTP jobs, JSON path assertion: the expected value as JSON (true, 3, "ok").',
    )

    handler_name = models.CharField(
        max_length=200, blank=True, help_text="Handler jobs: the registered handler's name."
    )
    batch_job_name = models.CharField(
        max_length=200, blank=True, help_text="Batch jobs: the registered batch job's name."
    )
    params = models.JSONField(
        default=dict,
        blank=True,
        help_text="Handler and batch jobs: default parameters, validated against the schema.",
    )

    timeout_seconds = models.FloatField(
        validators=bounds.between(0.001, bounds.MAX_TIMEOUT_SECONDS, unit="seconds"),
        default=60.0,
        help_text="An attempt that runs longer than this is stopped and counted as timed out.",
    )
    max_attempts = models.PositiveSmallIntegerField(
        validators=bounds.between(1, bounds.MAX_ATTEMPTS),
        default=3,
        help_text="Attempts per execution, the first one included.",
    )
    retry_backoff_seconds = models.FloatField(
        validators=bounds.between(0, bounds.MAX_BACKOFF_SECONDS, unit="seconds"),
        default=10.0,
        help_text="Delay before the first retry; doubled for each later one.",
    )
    retry_backoff_max_seconds = models.FloatField(
        validators=bounds.between(0, bounds.MAX_BACKOFF_SECONDS, unit="seconds"),
        default=600.0,
        help_text="The longest delay between two attempts.",
    )
    retry_jitter = models.BooleanField(
        default=True, help_text="Spread each retry delay randomly over its upper half."
    )
    retry_on_4xx = models.BooleanField(
        default=False, help_text="HTTP jobs: also retry on 4xx answers (5xx always retry)."
    )
    overlap_policy = models.CharField(
        max_length=8,
        choices=OverlapPolicy.choices,
        default=OverlapPolicy.ALLOW,
        help_text="What happens when a run starts while another run of this job is running.",
    )
    queue = models.CharField(
        max_length=100,
        blank=True,
        help_text=(
            "The Celery queue the job's executions are sent to. Empty: by kind, HTTP jobs to "
            "the I/O lane (BATCHJOBS_HTTP_QUEUE), the others to CELERY_TASK_DEFAULT_QUEUE."
        ),
    )
    max_running = models.PositiveIntegerField(
        validators=bounds.between(1, bounds.MAX_RUNNING_LIMIT),
        null=True,
        blank=True,
        help_text=(
            "At most this many runs of the job at once; a run past it waits QUEUED, with the "
            "reason shown, until one ends. Empty: no limit (the overlap policy's skip and "
            "queue allow one)."
        ),
    )
    target_host = models.CharField(
        max_length=255,
        blank=True,
        editable=False,
        db_index=True,
        help_text="HTTP jobs: the host the URL names, as its host limit is looked up.",
    )
    priority = models.PositiveSmallIntegerField(
        validators=bounds.between(0, bounds.MAX_PRIORITY),
        default=5,
        help_text="Message priority within the queue, 0 (first) to 9 (last).",
    )

    retention_days = models.PositiveIntegerField(
        validators=bounds.between(1, bounds.MAX_RETENTION_DAYS, unit="days"),
        null=True,
        blank=True,
        help_text="Keep finished executions this many days (empty: BATCHJOBS_RETENTION_DAYS).",
    )
    created_at = models.DateTimeField(auto_now_add=True, help_text="When the job was created.")
    updated_at = models.DateTimeField(auto_now=True, help_text="When the job was last changed.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who created the job.",
    )

    class Meta:
        ordering = ["name"]
        permissions = [
            ("run_batchjob", "Can start, stop, restart and abandon executions"),
            # The sql handler runs statements on a database of the operator's choosing: a power
            # of its own, apart from adding and running jobs.
            ("use_sql_handler", "Can save and run jobs that use the sql handler"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(timeout_seconds__gt=0), name="job_timeout_positive"),
            models.CheckConstraint(condition=Q(max_attempts__gte=1), name="job_max_attempts_min_1"),
            models.CheckConstraint(
                condition=Q(retry_backoff_seconds__gte=0), name="job_backoff_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(retry_backoff_max_seconds__gte=models.F("retry_backoff_seconds")),
                name="job_backoff_cap_not_below_base",
            ),
            models.CheckConstraint(condition=Q(priority__lte=9), name="job_priority_0_to_9"),
            models.CheckConstraint(condition=Q(kind__in=JobKind.values), name="job_kind_known"),
            models.CheckConstraint(
                condition=Q(overlap_policy__in=OverlapPolicy.values), name="job_overlap_known"
            ),
            models.CheckConstraint(
                condition=~Q(kind=JobKind.HTTP) | ~Q(http_url=""), name="job_http_has_url"
            ),
            models.CheckConstraint(
                condition=~Q(kind=JobKind.HANDLER) | ~Q(handler_name=""),
                name="job_handler_has_name",
            ),
            models.CheckConstraint(
                condition=~Q(kind=JobKind.BATCH) | ~Q(batch_job_name=""),
                name="job_batch_has_name",
            ),
        ]

    # Not a column: a worker's job cache (execution/lifecycle.py job_cached) sets whether any
    # enabled notification is attached, so a run's end skips the look-up when none is; any
    # other instance says True and the notification service looks.
    notifies: bool = True

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        if not self.queue:
            self.queue = default_queue(self.kind)
        self.target_host = url_host(self.http_url) if self.kind == JobKind.HTTP else ""
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "http_url" in update_fields:
            kwargs["update_fields"] = {*update_fields, "target_host"}
        super().save(*args, **kwargs)

    @property
    def target(self) -> str:
        """What the job calls, in one line."""
        if self.kind == JobKind.HTTP:
            return f"{self.http_method} {self.http_url}"
        if self.kind == JobKind.HANDLER:
            return self.handler_name
        return self.batch_job_name
