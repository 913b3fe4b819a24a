from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from batchjobs.rules import bounds
from batchjobs.rules.template import url_skeleton
from batchjobs.rules.url import UrlRefused, http_url_parse

from .dependency import UpstreamMode
from .labels import labelled, named
from .tag import JobTag


class JobKind(models.TextChoices):
    HTTP = "http", _("HTTP call")
    HANDLER = "handler", _("Python handler")
    BATCH = "batch", _("Batch job (steps)")


def default_queue(kind: str) -> str:
    """The queue a job of `kind` goes to unless it names one: HTTP calls to the I/O lane,
    where one worker process keeps hundreds in flight; the rest to the prefork workers."""
    if kind == JobKind.HTTP:
        return settings.BATCHJOBS_HTTP_QUEUE
    return settings.CELERY_TASK_DEFAULT_QUEUE


def url_host(url: str) -> str:
    """The host an HTTP job's URL names ("" if the URL is refused: validation says why); a
    URL's templates fill in its path and query only, so its host is the literal one."""
    try:
        return http_url_parse(url_skeleton(url)).host
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
    NONE = "", _("None")
    REGEX = "regex", _("Body matches a regular expression")
    JSON_PATH = "json_path", _("JSON path equals a value")


class OverlapPolicy(models.TextChoices):
    ALLOW = "allow", _("Allow: runs may overlap")
    SKIP = "skip", _("Skip: a run that would overlap is recorded SKIPPED")
    QUEUE = "queue", _("Queue: a run that would overlap waits for the running one")


job_name_validator = RegexValidator(
    r"^[\w][\w .:@+-]*$",
    _("Use letters, digits, spaces and . : @ + - _ ; start with a letter, digit or _."),
)


@named(_("job"), _("jobs"))
class BatchJob(models.Model):
    """What to run (an HTTP call, a handler or a batch job) and how: the run policy."""

    name = labelled(
        _("name"),
        models.CharField(
            max_length=200,
            unique=True,
            validators=[job_name_validator],
            help_text=_("Unique name, used to start the job from the API and the command line."),
        ),
    )
    description = labelled(
        _("description"),
        models.TextField(blank=True, help_text=_("What the job does, for operators.")),
    )
    kind = labelled(
        _("kind"),
        models.CharField(
            max_length=16, choices=JobKind.choices, help_text=_("What kind of work the job runs.")
        ),
    )
    enabled = labelled(
        _("enabled"),
        models.BooleanField(
            default=True, help_text=_("A disabled job is not fired by its schedules nor started.")
        ),
    )

    http_method = labelled(
        _("http method"),
        models.CharField(
            max_length=8,
            choices=HttpMethod.choices,
            default=HttpMethod.GET,
            help_text=_("HTTP jobs: the request method."),
        ),
    )
    http_url = labelled(
        _("http url"),
        models.CharField(
            max_length=2000,
            blank=True,
            help_text=_("HTTP jobs: the http:// or https:// URL to call."),
        ),
    )
    http_headers = labelled(
        _("http headers"),
        models.JSONField(
            default=list,
            blank=True,
            help_text=_(
                'HTTP jobs: a list of {"name": ..., "value": ..., "secret": true|false}; '
                "secret values are masked wherever they are shown."
            ),
        ),
    )
    http_body = labelled(
        _("http body"),
        models.TextField(blank=True, help_text=_("HTTP jobs: the request body, sent as is.")),
    )
    http_expected_status = labelled(
        _("http expected status"),
        models.CharField(
            max_length=200,
            default="200-299",
            help_text=_(
                "HTTP jobs: status codes that count as success, e.g. '200-299' or '200,202,304'."
            ),
        ),
    )
    http_assertion_kind = labelled(
        _("http assertion kind"),
        models.CharField(
            max_length=16,
            choices=AssertionKind.choices,
            default=AssertionKind.NONE,
            blank=True,
            help_text=_("HTTP jobs: an optional check of the response body on top of its status."),
        ),
    )
    http_assertion = labelled(
        _("http assertion"),
        models.CharField(
            max_length=500,
            blank=True,
            help_text=_(
                "HTTP jobs: the regular expression, or the JSON path such as $.data.items[0].id."
            ),
        ),
    )
    http_assertion_value = labelled(
        _("http assertion value"),
        models.CharField(
            max_length=500,
            blank=True,
            help_text=_(
                'HTTP jobs, JSON path assertion: the expected value as JSON (true, 3, "ok").'
            ),
        ),
    )

    handler_name = labelled(
        _("handler name"),
        models.CharField(
            max_length=200, blank=True, help_text=_("Handler jobs: the registered handler's name.")
        ),
    )
    batch_job_name = labelled(
        _("batch job name"),
        models.CharField(
            max_length=200, blank=True, help_text=_("Batch jobs: the registered batch job's name.")
        ),
    )
    params = labelled(
        _("params"),
        models.JSONField(
            default=dict,
            blank=True,
            help_text=_(
                "Handler and batch jobs: default parameters, validated against the schema."
            ),
        ),
    )

    timeout_seconds = labelled(
        _("timeout seconds"),
        models.FloatField(
            validators=bounds.between(0.001, bounds.MAX_TIMEOUT_SECONDS, unit="seconds"),
            default=60.0,
            help_text=_(
                "An attempt that runs longer than this is stopped and counted as timed out."
            ),
        ),
    )
    max_attempts = labelled(
        _("max attempts"),
        models.PositiveSmallIntegerField(
            validators=bounds.between(1, bounds.MAX_ATTEMPTS),
            default=3,
            help_text=_("Attempts per execution, the first one included."),
        ),
    )
    retry_backoff_seconds = labelled(
        _("retry backoff seconds"),
        models.FloatField(
            validators=bounds.between(0, bounds.MAX_BACKOFF_SECONDS, unit="seconds"),
            default=10.0,
            help_text=_("Delay before the first retry; doubled for each later one."),
        ),
    )
    retry_backoff_max_seconds = labelled(
        _("retry backoff max seconds"),
        models.FloatField(
            validators=bounds.between(0, bounds.MAX_BACKOFF_SECONDS, unit="seconds"),
            default=600.0,
            help_text=_("The longest delay between two attempts."),
        ),
    )
    retry_jitter = labelled(
        _("retry jitter"),
        models.BooleanField(
            default=True, help_text=_("Spread each retry delay randomly over its upper half.")
        ),
    )
    retry_on_4xx = labelled(
        _("retry on 4xx"),
        models.BooleanField(
            default=False, help_text=_("HTTP jobs: also retry on 4xx answers (5xx always retry).")
        ),
    )
    overlap_policy = labelled(
        _("overlap policy"),
        models.CharField(
            max_length=8,
            choices=OverlapPolicy.choices,
            default=OverlapPolicy.ALLOW,
            help_text=_("What happens when a run starts while another run of this job is running."),
        ),
    )
    upstream_mode = labelled(
        _("upstream mode"),
        models.CharField(
            max_length=8,
            choices=UpstreamMode.choices,
            default=UpstreamMode.ANY,
            help_text=_(
                "With several upstream jobs: start on each one's end, or once all have ended "
                "for the same logical time (fan-in)."
            ),
        ),
    )
    queue = labelled(
        _("queue"),
        models.CharField(
            max_length=100,
            blank=True,
            help_text=_(
                "The Celery queue the job's executions are sent to. Empty: by kind, HTTP jobs to "
                "the I/O lane (BATCHJOBS_HTTP_QUEUE), the others to CELERY_TASK_DEFAULT_QUEUE."
            ),
        ),
    )
    max_running = labelled(
        _("max running"),
        models.PositiveIntegerField(
            validators=bounds.between(1, bounds.MAX_RUNNING_LIMIT),
            null=True,
            blank=True,
            help_text=_(
                "At most this many runs of the job at once; a run past it waits QUEUED, with the "
                "reason shown, until one ends. Empty: no limit (the overlap policy's skip and "
                "queue allow one)."
            ),
        ),
    )
    target_host = labelled(
        _("target host"),
        models.CharField(
            max_length=255,
            blank=True,
            editable=False,
            db_index=True,
            help_text=_("HTTP jobs: the host the URL names, as its host limit is looked up."),
        ),
    )
    priority = labelled(
        _("priority"),
        models.PositiveSmallIntegerField(
            validators=bounds.between(0, bounds.MAX_PRIORITY),
            default=5,
            help_text=_("Message priority within the queue, 0 (first) to 9 (last)."),
        ),
    )

    retention_days = labelled(
        _("retention days"),
        models.PositiveIntegerField(
            validators=bounds.between(1, bounds.MAX_RETENTION_DAYS, unit="days"),
            null=True,
            blank=True,
            help_text=_(
                "Keep finished executions this many days (empty: BATCHJOBS_RETENTION_DAYS)."
            ),
        ),
    )
    tags = labelled(
        _("tags"),
        models.ManyToManyField(
            JobTag,
            blank=True,
            related_name="jobs",
            help_text=_("Labels to filter the job by and to act on it with others."),
        ),
    )
    created_at = labelled(
        _("created at"),
        models.DateTimeField(auto_now_add=True, help_text=_("When the job was created.")),
    )
    updated_at = labelled(
        _("updated at"),
        models.DateTimeField(auto_now=True, help_text=_("When the job was last changed.")),
    )
    created_by = labelled(
        _("created by"),
        models.ForeignKey(
            settings.AUTH_USER_MODEL,
            null=True,
            blank=True,
            on_delete=models.SET_NULL,
            related_name="+",
            help_text=_("Who created the job."),
        ),
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
