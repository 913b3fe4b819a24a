"""Executions (BatchLog): a read-only record with its attempts and steps, progress of what is
running, and the operator's stop / restart / abandon, one at a time from the execution's page or
in bulk on a selection. Only workers and services write executions; a superuser may delete old
ones. The dashboard is served from here too (it needs the same view permission)."""

from collections.abc import Callable
from typing import NamedTuple

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.functional import Promise
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from batchjobs.errors import BatchJobsError
from batchjobs.execution.limits import held_reason_shown
from batchjobs.models import BatchAttempt, BatchLog, ExecutionStatus, StepExecution
from batchjobs.selectors.executions import execution_operations
from batchjobs.selectors.progress import execution_progress
from batchjobs.services import operator

from .columns import moment_column
from .dashboard import DashboardViews
from .dependencies import execution_triggered_by, execution_triggered_runs
from .display import (
    SetAsideFilter,
    change_link,
    duration_text,
    json_pre,
    progress_bars,
    set_aside_marker,
    set_aside_text,
    status_badge,
    text_pre,
)

RUN_PERMISSION = "batchjobs.run_batchjob"


class Operation(NamedTuple):
    """An operator's operation on one execution and what the console says about it. Whole
    sentences per operation: a translation cannot be assembled from a shared verb."""

    function: Callable[..., BatchLog]
    label: Promise  # the button
    refused: Promise  # %(id)s, %(error)s
    # format_html's {id}, and {status} (the new status) or {link} (the restart's new run)
    done: Promise


OPERATIONS = {
    "stop": Operation(
        operator.execution_stop,
        _("Stop"),
        _("Execution #%(id)s was not asked to stop: %(error)s"),
        _("Execution #{id} asked to stop: now {status}."),
    ),
    "restart": Operation(
        operator.execution_restart,
        _("Restart"),
        _("Execution #%(id)s was not restarted: %(error)s"),
        _("Execution #{id} restarted as {link}."),
    ),
    "abandon": Operation(
        operator.execution_abandon,
        _("Abandon"),
        _("Execution #%(id)s was not abandoned: %(error)s"),
        _("Execution #{id} abandoned: now {status}."),
    ),
}


class ReadOnlyInline(admin.TabularInline):
    """Rows that belong to the execution: whoever may see the execution sees them, nobody
    edits them."""

    extra = 0
    can_delete = False

    def has_view_permission(self, request: HttpRequest, obj: BatchLog | None = None) -> bool:
        return self.admin_site.get_model_admin(self.parent_model).has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: BatchLog | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: BatchLog | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: BatchLog | None = None) -> bool:
        return False


class BatchAttemptInline(ReadOnlyInline):
    model = BatchAttempt
    fields = (
        "number",
        "status",
        "worker",
        "started",
        "finished",
        "duration",
        "http_status",
        "request_sent",
        "response",
        "error_text",
    )
    readonly_fields = fields
    started = moment_column(BatchAttempt, "started_at")
    finished = moment_column(BatchAttempt, "finished_at")

    @admin.display(description=_("duration"))
    def duration(self, attempt: BatchAttempt) -> str:
        return duration_text(attempt.duration_seconds)

    @admin.display(description=_("response excerpt"))
    def response(self, attempt: BatchAttempt) -> str:
        return text_pre(attempt.response_excerpt)

    @admin.display(description=_("request"))
    def request_sent(self, attempt: BatchAttempt) -> str:
        """HTTP jobs: the request as sent, templates filled in, secrets masked."""
        return json_pre(attempt.request)

    @admin.display(description=_("error"))
    def error_text(self, attempt: BatchAttempt) -> str:
        return text_pre(attempt.error)


class StepExecutionInline(ReadOnlyInline):
    model = StepExecution
    verbose_name = _("step")
    verbose_name_plural = _("steps")
    fields = (
        "step_name",
        "partition",
        "step_status",
        "exit_status",
        "read_count",
        "write_count",
        "filter_count",
        "skips",
        "commit_count",
        "rollback_count",
        "started",
        "duration",
        "error_text",
    )
    readonly_fields = fields
    started = moment_column(StepExecution, "started_at")

    @admin.display(description=_("status"))
    def step_status(self, step: StepExecution) -> str:
        return status_badge(step.status)

    @admin.display(description=_("skips (read/process/write)"))
    def skips(self, step: StepExecution) -> str:
        return f"{step.read_skip_count}/{step.process_skip_count}/{step.write_skip_count}"

    @admin.display(description=_("duration"))
    def duration(self, step: StepExecution) -> str:
        if step.started_at and step.finished_at:
            return duration_text((step.finished_at - step.started_at).total_seconds())
        return "-"

    @admin.display(description=_("error"))
    def error_text(self, step: StepExecution) -> str:
        return text_pre(step.error)


@admin.register(BatchLog)
class BatchLogAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "job",
        "status_badge",
        "trigger",
        "scheduled",
        "attempts_used",
        "created",
        "duration",
        "set_aside",
    )
    list_filter = (
        "job",
        "status",
        "trigger",
        ("created_at", admin.DateFieldListFilter),
        SetAsideFilter,
    )
    list_select_related = ("job",)
    search_fields = ("job__name", "idempotency_key", "worker")
    # Counting a table that grows with every run on each page view costs more than it tells.
    show_full_result_count = False
    inlines = [BatchAttemptInline, StepExecutionInline]
    actions = ["stop_selected", "restart_selected", "abandon_selected"]
    readonly_fields = (
        "scheduled",
        "logical",
        "interval_start",
        "interval_end",
        "created",
        "published",
        "started",
        "heartbeat",
        "finished",
        "next_attempt",
        "set_aside_state",
        "status_badge",
        "attempts_used",
        "duration",
        "progress",
        "params_json",
        "result_json",
        "last_response",
        "error_text",
        "execution_context_json",
        "triggered_by_link",
        "triggered_runs",
    )
    fieldsets = [
        (
            None,
            {
                "fields": (
                    "job",
                    "status_badge",
                    "trigger",
                    "schedule",
                    "scheduled",
                    "logical",
                    "interval_start",
                    "interval_end",
                    "created_by",
                    "idempotency_key",
                    "restart_of",
                )
            },
        ),
        (
            _("Dependencies"),
            {"fields": ("triggered_by_link", "dependency", "triggered_runs")},
        ),
        (_("Progress"), {"fields": ("progress",)}),
        (_("Attempts"), {"fields": ("attempts_used", "worker", "next_attempt", "exclusive")}),
        (
            _("Timing"),
            {"fields": ("created", "published", "started", "heartbeat", "finished", "duration")},
        ),
        (
            _("Outcome"),
            {
                "fields": (
                    "note",
                    "params_json",
                    "result_json",
                    "last_response",
                    "error_text",
                )
            },
        ),
        (
            _("Execution context"),
            {"classes": ("collapse",), "fields": ("execution_context_json",)},
        ),
    ]
    scheduled = moment_column(BatchLog, "scheduled_for")
    logical = moment_column(BatchLog, "logical_time")
    interval_start = moment_column(BatchLog, "data_interval_start")
    interval_end = moment_column(BatchLog, "data_interval_end")
    created = moment_column(BatchLog, "created_at")
    published = moment_column(BatchLog, "published_at")
    started = moment_column(BatchLog, "started_at")
    heartbeat = moment_column(BatchLog, "heartbeat_at")
    finished = moment_column(BatchLog, "finished_at")
    next_attempt = moment_column(BatchLog, "next_attempt_at")
    triggered_by_link = execution_triggered_by
    triggered_runs = execution_triggered_runs

    def get_fieldsets(self, request: HttpRequest, obj: BatchLog | None = None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None and obj.set_aside_at is not None:  # first: it explains the page
            return [(_("Set aside by housekeeping"), {"fields": ("set_aside_state",)}), *fieldsets]
        return fieldsets

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: BatchLog | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: BatchLog | None = None) -> bool:
        return request.user.is_superuser

    def has_run_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(RUN_PERMISSION)

    # --- operations ------------------------------------------------------------------------

    def _operate(self, request: HttpRequest, name: str, executions) -> BatchLog | None:
        """Run one operation on each execution, with a message per execution."""
        operation = OPERATIONS[name]
        result = None
        for execution in executions:
            try:
                result = operation.function(execution_id=execution.pk, user=request.user)
            except BatchJobsError as error:
                refused = operation.refused % {"id": execution.pk, "error": error}
                self.message_user(request, refused, messages.ERROR)
                continue
            link = change_link(BatchLog, result.pk, f"#{result.pk}")
            text = format_html(
                str(operation.done), id=execution.pk, status=result.status, link=link
            )
            self.message_user(request, text, messages.SUCCESS)
        return result

    @admin.action(description=_("Stop selected executions"), permissions=["run"])
    def stop_selected(self, request: HttpRequest, queryset: QuerySet[BatchLog]) -> None:
        self._operate(request, "stop", queryset.order_by("pk"))

    @admin.action(description=_("Restart selected executions"), permissions=["run"])
    def restart_selected(self, request: HttpRequest, queryset: QuerySet[BatchLog]) -> None:
        self._operate(request, "restart", queryset.order_by("pk"))

    @admin.action(description=_("Abandon selected executions"), permissions=["run"])
    def abandon_selected(self, request: HttpRequest, queryset: QuerySet[BatchLog]) -> None:
        self._operate(request, "abandon", queryset.order_by("pk"))

    def operate_view(self, request: HttpRequest, object_id: str, operation: str) -> HttpResponse:
        """POST <id>/stop/ (restart/, abandon/): the buttons on the execution's page."""
        if operation not in OPERATIONS or not self.has_run_permission(request):
            raise PermissionDenied
        execution = self.get_object(request, unquote(object_id))
        if execution is None:
            # Django's own not-found redirect (ModelAdmin), missing from django-stubs.
            return self._get_obj_does_not_exist_redirect(  # type: ignore[attr-defined]
                request, self.opts, object_id
            )
        if not self.has_view_permission(request, execution):
            raise PermissionDenied
        result = self._operate(request, operation, [execution])
        target = result if operation == "restart" and result is not None else execution
        return HttpResponseRedirect(reverse("admin:batchjobs_batchlog_change", args=[target.pk]))

    def get_urls(self):
        dashboard = DashboardViews(self)
        wrap = self.admin_site.admin_view
        operations = [
            path(
                f"<path:object_id>/{name}/",
                wrap(require_POST(self.operate_view)),
                {"operation": name},
                name=f"batchjobs_batchlog_{name}",
            )
            for name in OPERATIONS
        ]
        # Before the defaults: their "<path:object_id>/" pattern would swallow these.
        return [
            path("dashboard/", wrap(dashboard.page), name="batchjobs_dashboard"),
            path("dashboard/live/", wrap(dashboard.live), name="batchjobs_dashboard_live"),
            *operations,
            *super().get_urls(),
        ]

    def change_view(self, request: HttpRequest, object_id: str, form_url="", extra_context=None):
        execution = self.get_object(request, unquote(object_id))
        operations = []
        if execution is not None and self.has_run_permission(request):
            operations = [
                (name, OPERATIONS[name].label) for name in execution_operations(execution=execution)
            ]
        extra_context = {**(extra_context or {}), "operations": operations}
        return super().change_view(request, object_id, form_url, extra_context)

    # --- fields ----------------------------------------------------------------------------

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, execution: BatchLog) -> str:
        badge = status_badge(execution.status)
        if execution.status == ExecutionStatus.QUEUED and execution.held_reason:
            # Held by a limit: why it waits, where the operator looks first.
            return format_html(
                '{}<div class="help">{}</div>', badge, held_reason_shown(execution.held_reason)
            )
        return badge

    @admin.display(description=_("set aside"))
    def set_aside(self, execution: BatchLog) -> str:
        return set_aside_marker(execution)

    @admin.display(description=_("state"))
    def set_aside_state(self, execution: BatchLog) -> str:
        return set_aside_text(
            execution,
            what_to_do=gettext(
                "Processing it raised, so housekeeping (reaper, relay, retention) leaves it "
                "alone: fix the cause below, then stop, restart, abandon or delete it."
            ),
        )

    @admin.display(description=_("attempts"))
    def attempts_used(self, execution: BatchLog) -> str:
        return f"{execution.attempts}/{execution.max_attempts}"

    @admin.display(description=_("duration"))
    def duration(self, execution: BatchLog) -> str:
        return duration_text(execution.duration_seconds)

    @admin.display(description=_("progress"))
    def progress(self, execution: BatchLog) -> str:
        return progress_bars(execution_progress(execution=execution))

    @admin.display(description=_("parameters"))
    def params_json(self, execution: BatchLog) -> str:
        return json_pre(execution.params)

    @admin.display(description=_("result"))
    def result_json(self, execution: BatchLog) -> str:
        return json_pre(execution.result)

    @admin.display(description=_("last response"))
    def last_response(self, execution: BatchLog) -> str:
        attempt = (
            execution.attempt_rows.exclude(http_status=None, response_excerpt="")
            .order_by("-number")
            .first()
        )
        if attempt is None:
            return "-"
        return format_html(
            gettext("HTTP {status} (attempt {number}){excerpt}"),
            status=attempt.http_status if attempt.http_status is not None else "-",
            number=attempt.number,
            excerpt=text_pre(attempt.response_excerpt) if attempt.response_excerpt else "",
        )

    @admin.display(description=_("error"))
    def error_text(self, execution: BatchLog) -> str:
        return text_pre(execution.error)

    @admin.display(description=_("execution context"))
    def execution_context_json(self, execution: BatchLog) -> str:
        return json_pre(execution.execution_context)
