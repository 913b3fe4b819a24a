"""What the API reads and writes. Serializers check types and shapes only (a string is a string,
no unknown fields); every rule about the values is the services', so the API, the admin and the
command line refuse the same things with the same messages."""

from collections.abc import Mapping
from typing import Any, cast

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from batchjobs.models import (
    AttemptLogLine,
    Backfill,
    BatchAttempt,
    BatchJob,
    BatchLog,
    BatchSchedule,
    DependencyCondition,
    ExecutionStatus,
    OccurrenceOutcome,
    ScheduleKind,
    ScheduleOccurrence,
    StepExecution,
)
from batchjobs.selectors.attempt_log import LINES_PER_READ_MAX
from batchjobs.selectors.backfills import backfill_progress_text, backfill_total_estimated
from batchjobs.selectors.dependencies import (
    GRAPH_DEFAULT_DEPTH,
    GRAPH_MAX_DEPTH,
    execution_triggered,
)
from batchjobs.selectors.workers import queue_consumed, queues_consumed
from batchjobs.services.definition_serializers import (
    CALENDAR_DEFINITION_FIELDS,
    JOB_DEFINITION_FIELDS,
    LIMIT_DEFINITION_FIELDS,
    SCHEDULE_DEFINITION_FIELDS,
    CalendarDefinitionSerializer,
    JobDefinitionSerializer,
    LimitDefinitionSerializer,
    ScheduleDefinitionSerializer,
    StrictBooleanField,
    StrictFloatField,
    StrictSerializer,
)
from batchjobs.services.schedules import cron_describe

# --- errors (for the schema) -----------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text=gettext_lazy("What went wrong, in a sentence."))
    code = serializers.CharField(
        help_text=gettext_lazy("A stable code: invalid, not_found, conflict, ...")
    )


class ValidationErrorSerializer(ErrorSerializer):
    def get_fields(self) -> dict[str, serializers.Field]:
        # Added here, not declared: `errors` is also the name of Serializer's own property.
        fields = super().get_fields()
        fields["errors"] = serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()),
            help_text=gettext_lazy(
                "Each bad field (or 'body', or 'non_field_errors') with its messages."
            ),
        )
        return fields


# --- jobs ------------------------------------------------------------------------------------


class LatestExecutionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ExecutionStatus.choices)
    created_at = serializers.DateTimeField()


class JobSerializer(JobDefinitionSerializer):
    target = serializers.CharField(
        read_only=True, help_text=gettext_lazy("What the job calls, in one line.")
    )
    created_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    schedule_count = serializers.SerializerMethodField()
    latest_execution = serializers.SerializerMethodField()
    queue_consumed = serializers.SerializerMethodField(
        help_text=gettext_lazy(
            "Whether a running worker consumes the job's queue: false means its runs wait "
            "QUEUED until one starts; null when the broker (Redis) cannot tell."
        )
    )

    class Meta(JobDefinitionSerializer.Meta):
        fields = (
            "id", *JOB_DEFINITION_FIELDS, "target", "created_at", "updated_at", "created_by",
            "schedule_count", "latest_execution", "queue_consumed",
        )  # fmt: skip
        read_only_fields: tuple[str, ...] = ("created_at", "updated_at")

    def get_schedule_count(self, job: BatchJob) -> int:
        count = getattr(job, "schedule_count", None)
        return count if count is not None else job.schedules.count()

    @extend_schema_field(serializers.BooleanField(allow_null=True))
    def get_queue_consumed(self, job: BatchJob) -> bool | None:
        # Asked once per response, whatever the number of jobs listed: the list's children
        # share the root serializer's context (a dict, which DRF's types call a Mapping).
        context = cast(dict[str, Any], self.context)
        if "queues_consumed" not in context:
            context["queues_consumed"] = queues_consumed()
        return queue_consumed(job.queue, context["queues_consumed"])

    @extend_schema_field(LatestExecutionSerializer(allow_null=True))
    def get_latest_execution(self, job: BatchJob) -> dict | None:
        if not hasattr(job, "latest_execution_id"):
            latest = job.executions.order_by("-created_at", "-id").first()
            return LatestExecutionSerializer(latest).data if latest else None
        annotations = vars(job)  # selectors.job_list's, which BatchJob's type does not know
        if annotations["latest_execution_id"] is None:
            return None
        return {
            "id": annotations["latest_execution_id"],
            "status": annotations["latest_execution_status"],
            "created_at": serializers.DateTimeField().to_representation(
                annotations["latest_execution_created_at"]
            ),
        }


class StartSerializer(StrictSerializer):
    params = serializers.DictField(
        required=False,
        default=dict,
        help_text=gettext_lazy("Job parameters for this run, merged over the job's defaults."),
    )
    logical_time = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text=gettext_lazy(
            "The instant the run stands for (ISO 8601), e.g. a past fire time to process its "
            "period again; by default the start time. A batch job has one instance per period."
        ),
    )


class TestFireRequestSerializer(serializers.Serializer):
    method = serializers.CharField()
    url = serializers.CharField()
    headers = serializers.DictField(
        child=serializers.CharField(), help_text=gettext_lazy("Secrets masked.")
    )
    body = serializers.CharField(allow_blank=True)


class TestFireResponseSerializer(serializers.Serializer):
    status = serializers.IntegerField(
        allow_null=True, help_text=gettext_lazy("HTTP status, if one came back.")
    )
    url = serializers.CharField(
        allow_null=True, help_text=gettext_lazy("The URL answered, after redirects.")
    )
    bytes = serializers.IntegerField(allow_null=True)
    excerpt = serializers.CharField(
        allow_blank=True, help_text=gettext_lazy("The start of the body.")
    )


class TestFireSerializer(serializers.Serializer):
    outcome = serializers.CharField(
        help_text=gettext_lazy("SUCCEEDED, FAILED or TIMED_OUT, as a run judges.")
    )
    error = serializers.CharField(allow_blank=True)
    retryable = serializers.BooleanField(
        help_text=gettext_lazy("Whether a run would retry this failure.")
    )
    duration_seconds = serializers.FloatField()
    request = TestFireRequestSerializer()
    response = TestFireResponseSerializer()


# --- schedules -------------------------------------------------------------------------------


class ScheduleSerializer(ScheduleDefinitionSerializer):
    job_name = serializers.CharField(source="job.name", read_only=True)
    summary = serializers.CharField(
        read_only=True, help_text=gettext_lazy("The timing in a few words.")
    )
    cron_description = serializers.SerializerMethodField()
    delay_seconds = StrictFloatField(
        write_only=True,
        required=False,
        help_text=gettext_lazy(
            "On create only: a once-schedule that fires this many seconds from now."
        ),
    )
    run_now_if_past = StrictBooleanField(
        write_only=True,
        required=False,
        default=False,
        help_text=gettext_lazy(
            "A once-schedule whose run_at has passed fires now instead of being refused."
        ),
    )

    class Meta(ScheduleDefinitionSerializer.Meta):
        fields = (
            "id", "job", "job_name", *SCHEDULE_DEFINITION_FIELDS, "summary", "cron_description",
            "next_fire_at", "last_fire_at", "run_count", "set_aside_at", "set_aside_reason",
            "created_at", "updated_at", "delay_seconds", "run_now_if_past",
        )  # fmt: skip
        read_only_fields = (
            "next_fire_at", "last_fire_at", "run_count", "set_aside_at", "set_aside_reason",
            "created_at", "updated_at",
        )  # fmt: skip

    def get_cron_description(self, schedule: BatchSchedule) -> str:
        return cron_describe(schedule.cron_expression) if schedule.kind == "cron" else ""

    def to_internal_value(self, data: Any) -> dict:
        # A delay makes a once-schedule: the kind goes without saying (the service sets it).
        if isinstance(data, Mapping) and "delay_seconds" in data and "kind" not in data:
            data = {**data, "kind": ScheduleKind.ONCE}
        return super().to_internal_value(data)

    def validate_delay_seconds(self, value: float) -> float:
        if self.instance is not None:
            raise serializers.ValidationError(_("Only when creating; set run_at to move it."))
        return value


class PreviewQuerySerializer(serializers.Serializer):
    count = serializers.IntegerField(min_value=1, max_value=1000, default=10)


class PreviewFireSerializer(serializers.Serializer):
    """One batchjobs.scheduling.preview.PreviewFire."""

    at = serializers.DateTimeField(
        help_text=gettext_lazy("The fire time in UTC (jitter included).")
    )
    local = serializers.SerializerMethodField(
        help_text=gettext_lazy("The same instant in the schedule's zone.")
    )
    utc_offset_seconds = serializers.SerializerMethodField()
    dst_change = serializers.BooleanField(
        help_text=gettext_lazy(
            "The UTC offset changed since the previous fire: a DST transition between."
        )
    )
    excluded = serializers.BooleanField(
        help_text=gettext_lazy(
            "Its day is excluded by one of the schedule's calendars: it does not fire at `at`."
        )
    )
    reason = serializers.CharField(
        help_text=gettext_lazy("Why its day is excluded (empty when it is not).")
    )
    moved_to = serializers.DateTimeField(
        allow_null=True,
        help_text=gettext_lazy(
            'Calendar policy "move": when it fires instead, in UTC (null when not moved).'
        ),
    )

    def get_local(self, fire) -> str:
        return fire.local.isoformat()

    def get_utc_offset_seconds(self, fire) -> int:
        return int(fire.utc_offset.total_seconds())


class PreviewSerializer(serializers.Serializer):
    schedule = serializers.IntegerField()
    timezone = serializers.CharField()
    fires = PreviewFireSerializer(many=True)


# --- executions ------------------------------------------------------------------------------


class ExecutionSerializer(serializers.ModelSerializer):
    job_name = serializers.CharField(source="job.name", read_only=True)
    created_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    result = serializers.JSONField(read_only=True, allow_null=True)

    class Meta:
        model = BatchLog
        fields: tuple[str, ...] = (
            "id", "job", "job_name", "schedule", "trigger", "status", "scheduled_for", "params",
            "attempts", "max_attempts", "next_attempt_at", "created_at", "started_at",
            "finished_at", "heartbeat_at", "duration_seconds", "worker", "result", "error",
            "note", "progress_done", "progress_total", "instance_key", "restart_of",
            "idempotency_key", "created_by", "set_aside_at", "set_aside_reason", "held_by",
            "held_reason", "logical_time", "data_interval_start", "data_interval_end",
            "triggered_by", "dependency", "backfill",
        )  # fmt: skip
        read_only_fields = fields


class AttemptSerializer(serializers.ModelSerializer):
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = BatchAttempt
        fields = (
            "number", "status", "worker", "task_id", "started_at", "finished_at",
            "duration_seconds", "http_status", "response_excerpt", "error", "retryable",
            "request",
        )  # fmt: skip
        read_only_fields = fields


class StepSerializer(serializers.ModelSerializer):
    class Meta:
        model = StepExecution
        fields = (
            "id", "step_name", "partition", "status", "exit_status", "read_count", "write_count",
            "filter_count", "read_skip_count", "process_skip_count", "write_skip_count",
            "commit_count", "rollback_count", "execution_context", "started_at", "finished_at",
            "error",
        )  # fmt: skip
        read_only_fields = fields


class TriggeredSerializer(serializers.Serializer):
    """A run an execution's end started (a job dependency)."""

    id = serializers.IntegerField()
    job = serializers.IntegerField(source="job_id")
    job_name = serializers.CharField(source="job.name")
    status = serializers.ChoiceField(choices=ExecutionStatus.choices)
    condition = serializers.CharField(
        source="dependency.condition",
        allow_null=True,
        default=None,
        help_text=gettext_lazy("The edge's condition (null once the edge is deleted)."),
    )


class ExecutionDetailSerializer(ExecutionSerializer):
    attempt_history = AttemptSerializer(source="attempt_rows", many=True, read_only=True)
    steps = StepSerializer(many=True, read_only=True)
    triggered = serializers.SerializerMethodField(
        help_text=gettext_lazy("The runs this execution's end started (job dependencies).")
    )

    class Meta(ExecutionSerializer.Meta):
        fields = (
            *ExecutionSerializer.Meta.fields, "execution_context", "attempt_history", "steps",
            "triggered",
        )  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(TriggeredSerializer(many=True))
    def get_triggered(self, execution: BatchLog) -> list[dict]:
        return list(TriggeredSerializer(execution_triggered(execution=execution), many=True).data)


# --- job dependencies ------------------------------------------------------------------------


@extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string"}]})
class JobRefField(serializers.Field):
    """A job by its id (an integer) or its name; the service says which job does not exist.
    Shown as the id."""

    default_error_messages = {"invalid": gettext_lazy("Name a job by its id or its name.")}

    def to_internal_value(self, data: Any) -> int | str:
        if isinstance(data, bool) or not isinstance(data, int | str) or data == "":
            self.fail("invalid")
        return data

    def to_representation(self, value: BatchJob) -> int:
        return value.pk


class DependencySerializer(StrictSerializer):
    """An edge of the job graph: when `upstream` ends meeting `condition`, `downstream` starts."""

    id = serializers.IntegerField(read_only=True)
    upstream = JobRefField(help_text=gettext_lazy("The upstream job: its id or its name."))
    upstream_name = serializers.CharField(source="upstream.name", read_only=True)
    downstream = JobRefField(help_text=gettext_lazy("The downstream job: its id or its name."))
    downstream_name = serializers.CharField(source="downstream.name", read_only=True)
    condition = serializers.ChoiceField(
        choices=DependencyCondition.choices, default=DependencyCondition.SUCCESS
    )
    created_at = serializers.DateTimeField(read_only=True)


class DependencyQuerySerializer(serializers.Serializer):
    job = serializers.IntegerField(
        required=False, help_text=gettext_lazy("Only the edges of this job (either end).")
    )


class GraphQuerySerializer(serializers.Serializer):
    depth = serializers.IntegerField(
        min_value=1, max_value=GRAPH_MAX_DEPTH, default=GRAPH_DEFAULT_DEPTH
    )


class GraphNodeSerializer(serializers.Serializer):
    """A job in the graph, with the jobs beyond it (`children`, nodes of the same shape)."""

    job = serializers.IntegerField(source="job_id")
    name = serializers.CharField()
    enabled = serializers.BooleanField()
    upstream_mode = serializers.CharField()
    condition = serializers.CharField(help_text=gettext_lazy("The edge's condition."))
    dependency = serializers.IntegerField(source="dependency_id", allow_null=True)
    truncated = serializers.BooleanField(
        help_text=gettext_lazy("More jobs lie beyond the depth read.")
    )
    repeated = serializers.BooleanField(
        help_text=gettext_lazy("Shown already on another branch, with its jobs there.")
    )
    children = serializers.SerializerMethodField()

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_children(self, node) -> list[dict]:
        return list(GraphNodeSerializer(node.children, many=True).data)


class JobGraphSerializer(serializers.Serializer):
    job = GraphNodeSerializer()
    upstream = GraphNodeSerializer(many=True)
    downstream = GraphNodeSerializer(many=True)
    depth = serializers.IntegerField()


class ExecutionSummarySerializer(serializers.Serializer):
    """The JobOperator's summary of an execution."""

    id = serializers.IntegerField()
    job = serializers.CharField()
    status = serializers.ChoiceField(choices=ExecutionStatus.choices)
    trigger = serializers.CharField()
    params = serializers.JSONField()
    attempts = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    restart_of = serializers.IntegerField(allow_null=True)
    logical_time = serializers.DateTimeField(allow_null=True)
    data_interval_start = serializers.DateTimeField(allow_null=True)
    data_interval_end = serializers.DateTimeField(allow_null=True)


class StepSummarySerializer(serializers.Serializer):
    """The JobOperator's summary of a step execution."""

    step = serializers.CharField()
    partition = serializers.CharField(allow_blank=True)
    status = serializers.ChoiceField(choices=ExecutionStatus.choices)
    exit_status = serializers.CharField(allow_blank=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    read_count = serializers.IntegerField()
    write_count = serializers.IntegerField()
    filter_count = serializers.IntegerField()
    read_skip_count = serializers.IntegerField()
    process_skip_count = serializers.IntegerField()
    write_skip_count = serializers.IntegerField()
    commit_count = serializers.IntegerField()
    rollback_count = serializers.IntegerField()


class RunningQuerySerializer(serializers.Serializer):
    job = serializers.CharField(help_text=gettext_lazy("The job's name."))


class AttemptLogQuerySerializer(serializers.Serializer):
    after = serializers.IntegerField(
        min_value=0, max_value=2**31 - 1, default=0,
        help_text=gettext_lazy("Only the lines numbered above this (the last next_after)."),
    )  # fmt: skip
    limit = serializers.IntegerField(
        min_value=1, max_value=LINES_PER_READ_MAX, default=500,
        help_text=gettext_lazy("The most lines to return."),
    )  # fmt: skip


class AttemptLogLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = AttemptLogLine
        fields = ("number", "logged_at", "level", "logger", "message")
        read_only_fields = fields


class AttemptLogSerializer(serializers.Serializer):
    """A read of an attempt's log lines (attempt_log_page)."""

    lines = AttemptLogLineSerializer(many=True)
    next_after = serializers.IntegerField(
        help_text=gettext_lazy("Ask again with after= this for the lines that follow.")
    )
    dropped = serializers.IntegerField(
        help_text=gettext_lazy("Lines the attempt logged beyond its cap, not kept.")
    )
    running = serializers.BooleanField(
        help_text=gettext_lazy("Whether the attempt still runs (more lines may come).")
    )


class RunningSerializer(serializers.Serializer):
    job = serializers.CharField()
    execution_ids = serializers.ListField(child=serializers.IntegerField())


# --- jobs as code ----------------------------------------------------------------------------


class DefinitionsExportQuerySerializer(serializers.Serializer):
    job = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text=gettext_lazy(
            "Only the jobs of these names (repeat: ?job=a&job=b); default: every job."
        ),
    )


class DefinitionsImportQuerySerializer(serializers.Serializer):
    dry_run = serializers.BooleanField(
        required=False, default=False, help_text=gettext_lazy("Check everything, change nothing.")
    )


class DefinitionsDocumentSerializer(serializers.Serializer):
    """For the schema: a document of batchjobs.services.definitions (the service checks it)."""

    version = serializers.IntegerField(help_text=gettext_lazy("1, the only version."))
    jobs = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        help_text=gettext_lazy(
            "Each job's definition (the fields of a job) with `schedules`, a list of "
            "schedule definitions. Secret header values are masked."
        ),
    )
    limits = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        help_text=gettext_lazy(
            "Run limits (scope, name, max_running, max_per_second), matched by scope and "
            "name. An export of named jobs holds the limits of their queues and target hosts."
        ),
    )


class DefinitionsImportResultSerializer(serializers.Serializer):
    """One batchjobs.services.definitions.ImportResult."""

    jobs_created = serializers.IntegerField()
    jobs_updated = serializers.IntegerField()
    schedules_created = serializers.IntegerField()
    schedules_updated = serializers.IntegerField()
    schedules_deleted = serializers.IntegerField()
    limits_created = serializers.IntegerField()
    limits_updated = serializers.IntegerField()
    calendars_created = serializers.IntegerField()
    calendars_updated = serializers.IntegerField()
    dry_run = serializers.BooleanField(
        help_text=gettext_lazy("Nothing was changed: what would have been.")
    )


# --- limits ----------------------------------------------------------------------------------


class LimitSerializer(LimitDefinitionSerializer):
    waiting = serializers.IntegerField(
        read_only=True,
        help_text=gettext_lazy("Executions QUEUED now because this limit holds them."),
    )
    running = serializers.IntegerField(
        read_only=True,
        help_text=gettext_lazy(
            "Executions running now that it counts (of the queue's jobs, or of the jobs "
            "calling the host)."
        ),
    )

    class Meta(LimitDefinitionSerializer.Meta):
        fields = ("id", *LIMIT_DEFINITION_FIELDS, "waiting", "running", "updated_at")
        read_only_fields: tuple[str, ...] = ("updated_at",)


# --- calendars -------------------------------------------------------------------------------


class CalendarSerializer(CalendarDefinitionSerializer):
    schedule_count = serializers.IntegerField(
        read_only=True,
        help_text=gettext_lazy("How many schedules the calendar is attached to."),
    )

    class Meta(CalendarDefinitionSerializer.Meta):
        fields = ("id", *CALENDAR_DEFINITION_FIELDS, "schedule_count", "created_at",
                  "updated_at")  # fmt: skip
        read_only_fields: tuple[str, ...] = ("created_at", "updated_at")


class CalendarDaysQuerySerializer(serializers.Serializer):
    year = serializers.IntegerField(
        min_value=1, max_value=9999, help_text=gettext_lazy("The year whose days to list.")
    )


class CalendarDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    reason = serializers.CharField(
        help_text=gettext_lazy(
            "Why it is excluded: a holiday's name, a weekend day, a custom date."
        )
    )


class CalendarDaysSerializer(serializers.Serializer):
    calendar = serializers.IntegerField()
    year = serializers.IntegerField()
    days = CalendarDaySerializer(many=True)


# --- registries ------------------------------------------------------------------------------


class HandlerSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    schema = serializers.JSONField(
        help_text=gettext_lazy("JSON Schema of the handler's parameters.")
    )


class BatchJobDefinitionSerializer(serializers.Serializer):
    """One batchjobs.batch.registry.RegisteredBatchJob."""

    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    parameters_schema = serializers.JSONField(
        help_text=gettext_lazy("JSON Schema of the job parameters.")
    )
    identifying = serializers.ListField(
        child=serializers.CharField(),
        allow_null=True,
        help_text=gettext_lazy("The parameters that identify a job instance; null: all of them."),
    )
    has_incrementer = serializers.SerializerMethodField(
        help_text=gettext_lazy("Whether start-next-instance works.")
    )

    def get_has_incrementer(self, registered) -> bool:
        return registered.incrementer is not None


# --- scheduler status ------------------------------------------------------------------------


class BeatSerializer(serializers.Serializer):
    id = serializers.CharField(source="beat_id")
    last_seen = serializers.DateTimeField()


class NextDueSerializer(serializers.Serializer):
    schedule = serializers.IntegerField(source="schedule_id")
    schedule_kind = serializers.CharField()
    job = serializers.IntegerField(source="job_id")
    job_name = serializers.CharField()
    job_kind = serializers.CharField()
    at = serializers.DateTimeField()


class SchedulerStatusSerializer(serializers.Serializer):
    beat_alive = serializers.BooleanField(
        help_text=gettext_lazy("A beat process refreshed its heartbeat.")
    )
    beats = BeatSerializer(many=True)
    broker_reachable = serializers.BooleanField()
    workers = serializers.ListField(
        child=serializers.CharField(),
        allow_null=True,
        help_text=gettext_lazy(
            "Workers present (announced within the presence timeout); null if the broker could not "
            "be asked."
        ),
    )
    total_jobs = serializers.IntegerField()
    executions = serializers.DictField(
        source="counts",
        child=serializers.IntegerField(),
        help_text=gettext_lazy("Executions by status."),
    )
    next_due = NextDueSerializer(allow_null=True)


# --- backfills -------------------------------------------------------------------------------


class BackfillCreateSerializer(StrictSerializer):
    """Types only: the range, the cap and the count of fires are the service's to check."""

    schedule = serializers.IntegerField(help_text=gettext_lazy("The schedule to backfill."))
    range_start = serializers.DateTimeField(
        help_text=gettext_lazy("The first nominal fire time included.")
    )
    range_end = serializers.DateTimeField(
        help_text=gettext_lazy("The last nominal fire time included; not in the future.")
    )
    max_concurrency = serializers.IntegerField(
        default=1, help_text=gettext_lazy("At most this many of its runs queued or running.")
    )
    params = serializers.JSONField(
        default=dict, help_text=gettext_lazy("Merged over the schedule's for each run.")
    )
    confirm = StrictBooleanField(
        default=False,
        help_text=gettext_lazy("Needed when the range holds more than 1,000,000 fires."),
    )
    dry_run = StrictBooleanField(
        default=False,
        help_text=gettext_lazy("List the fire times (the first 1,000) and save nothing."),
    )


class BackfillSerializer(serializers.ModelSerializer):
    """A backfill from selectors.backfills (annotated with `active`)."""

    job = serializers.IntegerField(source="schedule.job_id", read_only=True)
    job_name = serializers.CharField(source="schedule.job.name", read_only=True)
    active = serializers.IntegerField(
        read_only=True, help_text=gettext_lazy("Its runs queued or running now.")
    )
    fires_total_estimated = serializers.SerializerMethodField(
        help_text=gettext_lazy(
            "fires_total is an estimate (over 10,000 fires of a cron or a day interval) until "
            "the backfill completes."
        )
    )
    progress = serializers.SerializerMethodField(
        help_text=gettext_lazy("created N of M, K already run, R running")
    )
    created_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = Backfill
        fields: tuple[str, ...] = (
            "id", "schedule", "job", "job_name", "range_start", "range_end", "max_concurrency",
            "status", "fires_total", "fires_total_estimated", "fires_created", "fires_existing",
            "active", "progress", "cursor", "params", "created_by", "created_at", "finished_at",
        )  # fmt: skip
        read_only_fields = fields

    def get_fires_total_estimated(self, backfill: Backfill) -> bool:
        return backfill_total_estimated(backfill)

    def get_progress(self, backfill: Backfill) -> str:
        return backfill_progress_text(backfill)


class BackfillDryRunFireSerializer(serializers.Serializer):
    at = serializers.DateTimeField(source="fire", help_text=gettext_lazy("The fire time (UTC)."))
    execution = serializers.IntegerField(
        source="execution_id",
        allow_null=True,
        help_text=gettext_lazy("Its execution, when the fire has one already (it is skipped)."),
    )
    excluded = serializers.BooleanField(
        help_text=gettext_lazy("Its day is excluded by one of the schedule's calendars.")
    )
    reason = serializers.CharField(help_text=gettext_lazy("Why it is excluded."))
    moved_to = serializers.DateTimeField(
        allow_null=True,
        help_text=gettext_lazy("Where the calendar policy move puts it (it runs then)."),
    )


class BackfillDryRunSerializer(serializers.Serializer):
    """A batchjobs.services.backfills.DryRun."""

    total = serializers.IntegerField(help_text=gettext_lazy("Fires in the range."))
    total_estimated = serializers.BooleanField(
        source="estimated",
        help_text=gettext_lazy(
            "total is an estimate: over 10,000 fires of a cron or a day interval (the rest "
            "from the fires per matching day)."
        ),
    )
    needs_confirm = serializers.BooleanField(
        help_text=gettext_lazy("Over 1,000,000 fires (or about): creating it needs confirm.")
    )
    existing = serializers.IntegerField(
        help_text=gettext_lazy("Of the fires listed, those that have an execution already.")
    )
    excluded = serializers.IntegerField(
        help_text=gettext_lazy("Of the fires listed, those its calendars exclude (not run).")
    )
    moved = serializers.IntegerField(
        help_text=gettext_lazy("Of the fires listed, those its calendars move to another day.")
    )
    fires = BackfillDryRunFireSerializer(many=True)


class OccurrenceQuerySerializer(serializers.Serializer):
    since = serializers.DateTimeField(
        required=False, help_text=gettext_lazy("Only fires at or after this instant.")
    )
    until = serializers.DateTimeField(
        required=False, help_text=gettext_lazy("Only fires at or before this instant.")
    )
    outcome = serializers.ListField(
        child=serializers.ChoiceField(choices=OccurrenceOutcome.choices),
        required=False,
        help_text=gettext_lazy("Only these outcomes (repeat the parameter for several)."),
    )


class OccurrenceSerializer(serializers.ModelSerializer):
    """One record of a schedule's account: what became of a nominal fire, or of a run of
    `fires` consecutive fires from scheduled_for through last_scheduled_for."""

    class Meta:
        model = ScheduleOccurrence
        fields = ("id", "scheduled_for", "last_scheduled_for", "fires", "outcome", "reason",
                  "execution", "due_at", "recorded_at")  # fmt: skip
        read_only_fields = fields


class OccurrenceListSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    account = serializers.DictField(
        child=serializers.IntegerField(),
        help_text=gettext_lazy("Fires per outcome in the window (every outcome named)."),
    )
    results = OccurrenceSerializer(many=True)
