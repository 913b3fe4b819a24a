"""Executions (BatchLog): a read-only record with its attempts and steps, progress of what is
running, and the operator's stop / restart / abandon, one at a time from the execution's page or
in bulk on a selection. Only workers and services write executions; a superuser may delete old
ones. The dashboard is served from here too (it needs the same view permission)."""

from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import smart_split, unescape_string_literal
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from batchjobs.errors import BatchJobsError
from batchjobs.execution.limits import held_reason_shown
from batchjobs.models import BatchLog, ExecutionStatus, JobKind
from batchjobs.models.execution import ACTIVE_STATUSES
from batchjobs.selectors.executions import (
    attempt_log_before,
    attempt_records,
    execution_for_page,
    execution_operations,
    execution_search,
    execution_skipped_items,
)
from batchjobs.services import operator

from .columns import moment_column
from .dashboard import DashboardViews
from .dependencies import execution_triggered_by, execution_triggered_runs
from .display import (
    SetAsideFilter,
    change_link,
    json_pre,
    relative_text,
    set_aside_marker,
    set_aside_text,
    stamp,
    status_badge,
)
from .execution_page import (
    attempt_context,
    attempt_summary_html,
    attempts_html,
    header_context,
    header_html,
    log_lines_html,
    page_urls,
    precise_duration,
    steps_html,
)

RUN_PERMISSION = "batchjobs.run_batchjob"
# The stylesheet's look of each operation's button (console.css).
OPERATION_CLASSES = {"stop": "bj-danger", "restart": "bj-primary", "abandon": "bj-secondary"}
# A search term is cut to this many characters and words.
SEARCH_MAX_CHARS = 200
SEARCH_WORDS_MAX = 5


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


class ExecutionPageViews:
    """The execution page's live endpoints, under the executions admin and its view
    permission; admin_view() makes them uncacheable."""

    def __init__(self, model_admin: "BatchLogAdmin"):
        self.model_admin = model_admin

    def _execution(self, request: HttpRequest, object_id: str) -> BatchLog:
        try:
            execution = execution_for_page(execution_id=int(unquote(object_id)))
        except ValueError:
            execution = None
        if execution is None:
            raise Http404(gettext("No such execution."))
        if not self.model_admin.has_view_permission(request, execution):
            raise PermissionDenied
        return execution

    def live(self, request: HttpRequest, object_id: str) -> JsonResponse:
        """GET <id>/live/?attempt=N&line=L: what the page shows that changes while the execution
        runs, drawn by the code that draws it on the page: the header with its progress, the
        status in the breadcrumb, the operator's buttons, a batch job's steps, the summary of
        attempt N (the page's last) with its lines after L, and the attempts after N in full."""
        execution = self._execution(request, object_id)
        attempt, line = query_number(request, "attempt"), query_number(request, "line")
        records = attempt_records(
            execution=execution,
            after=max(attempt - 1, 0),
            shown_up_to=line if attempt else None,
        )
        current = next((record for record in records if record.attempt.number == attempt), None)
        new = [record for record in records if record is not current]
        answer = {
            "ended": execution.status not in ACTIVE_STATUSES,
            "status": execution.status,
            "header": header_html(execution, request),
            "operations": self.model_admin.operations_html(request, execution),
            "summary": attempt_summary_html(current, request) if current else "",
            "lines": log_lines_html(current.lines) if current else "",
            "last_line": current.last_line if current else line,
            "new_attempts": attempts_html(new, request),
        }
        if execution.job.kind == JobKind.BATCH:
            answer["steps"] = steps_html(execution, request)
        return JsonResponse(answer)

    def log(self, request: HttpRequest, object_id: str) -> JsonResponse:
        """GET <id>/log/?attempt=N&before=L: the lines of attempt N just before line L (the
        page's "show earlier")."""
        execution = self._execution(request, object_id)
        before = query_number(request, "before")
        lines = attempt_log_before(
            execution=execution, number=query_number(request, "attempt"), before_line=before
        )
        first = lines[0].number if lines else before
        earlier = max(first - 1, 0)
        more = ngettext(
            "Show %(counter)s earlier line", "Show %(counter)s earlier lines", earlier
        ) % {"counter": earlier}
        return JsonResponse({"lines": log_lines_html(lines), "first_line": first, "more": more})


def query_number(request: HttpRequest, name: str) -> int:
    """A small non-negative whole number from the query string, 0 when missing or bad (the
    script sends them; a hand-made URL gets the start, not a 500)."""
    value = request.GET.get(name, "")
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 9 else 0


def compact_moment(value: datetime | None) -> SafeString | str:
    """A list's point in time in little width: the time of day for today, else the date and
    time without the year (the date alone in another year); in full, and how long ago, on
    hover."""
    if value is None:
        return "-"
    local, today = timezone.localtime(value), timezone.localdate()
    if local.date() == today:
        text = f"{local:%H:%M:%S}"
    elif local.year == today.year:
        text = f"{local:%m-%d %H:%M}"
    else:
        text = f"{local:%Y-%m-%d}"
    return format_html(
        '<time datetime="{}" title="{} ({})">{}</time>',
        value.isoformat(),
        stamp(value),
        relative_text(value, now=timezone.now()),
        text,
    )


@admin.register(BatchLog)
class BatchLogAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "job",
        "status_badge",
        "trigger",
        "attempts_used",
        "duration",
        "created_when",
    )
    list_filter = (
        "status",
        "trigger",
        "job__tags",
        ("created_at", admin.DateFieldListFilter),
        SetAsideFilter,
    )
    list_select_related = ("job",)
    # Searched by execution_search (get_search_results): the error's text too, "why did these
    # fail?"; listed here for the admin to show its search box.
    search_fields = ("error",)
    search_help_text = _("Words in the error, the worker or the job's name; an id; a key.")
    # Counting a table that grows with every run on each page view costs more than it tells.
    show_full_result_count = False
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
        "attempts_used",
        "duration",
        "params_json",
        "result_json",
        "execution_context_json",
        "triggered_by_link",
        "triggered_runs",
    )
    # Below the header, attempts and skipped items of change_form.html: the record in full.
    fieldsets = [
        (
            _("Trigger"),
            {
                "fields": (
                    "job",
                    "trigger",
                    "schedule",
                    "scheduled",
                    "logical",
                    "interval_start",
                    "interval_end",
                    "created_by",
                    "idempotency_key",
                    "restart_of",
                    "note",
                )
            },
        ),
        (
            _("Dependencies"),
            {"fields": ("triggered_by_link", "dependency", "triggered_runs")},
        ),
        (_("Attempts"), {"fields": ("attempts_used", "worker", "next_attempt", "exclusive")}),
        (
            _("Timing"),
            {"fields": ("created", "published", "started", "heartbeat", "finished", "duration")},
        ),
        (_("Outcome"), {"fields": ("params_json", "result_json")}),
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
        if obj is not None and obj.status != ExecutionStatus.QUEUED:
            # The next attempt's time means something only while one waits.
            fieldsets = [
                (name, {**options, "fields": [f for f in options["fields"] if f != "next_attempt"]})
                for name, options in fieldsets
            ]
        if obj is not None and obj.set_aside_at is not None:  # first: it explains the page
            return [(_("Set aside by housekeeping"), {"fields": ("set_aside_state",)}), *fieldsets]
        return fieldsets

    def get_object(self, request: HttpRequest, object_id: str, from_field=None):
        """With what the page's header names, in the same query."""
        if from_field is not None or not (object_id.isascii() and object_id.isdigit()):
            return super().get_object(request, object_id, from_field)
        return execution_for_page(execution_id=int(object_id), queryset=self.get_queryset(request))

    def get_search_results(self, request: HttpRequest, queryset, search_term: str):
        # Bounded like every other input: a longer term names no error anyone typed.
        words = [
            unescape_string_literal(w) if len(w) > 1 and w[0] in "\"'" and w[0] == w[-1] else w
            for w in smart_split(search_term[:SEARCH_MAX_CHARS])
        ]
        return execution_search(queryset=queryset, words=words[:SEARCH_WORDS_MAX]), False

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
        page = ExecutionPageViews(self)
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
            path("<path:object_id>/live/", wrap(page.live), name="batchjobs_batchlog_live"),
            path("<path:object_id>/log/", wrap(page.log), name="batchjobs_batchlog_log"),
            *operations,
            *super().get_urls(),
        ]

    def operations_html(self, request: HttpRequest, execution: BatchLog) -> str:
        """The operator's buttons that the execution's status allows, for those who may run."""
        operations = []
        if self.has_run_permission(request):
            operations = [
                (name, OPERATIONS[name].label, OPERATION_CLASSES[name])
                for name in execution_operations(execution=execution)
            ]
        return render_to_string(
            "admin/batchjobs/batchlog/operations.html",
            {"operations": operations, "execution": execution},
            request=request,
        )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context.update(
                {
                    "title": gettext("Execution #%(id)s") % {"id": obj.pk},
                    "subtitle": None,
                    "header": header_context(obj),
                    "may_run": self.has_run_permission(request),
                    "operations_html": self.operations_html(request, obj),
                    "attempts": [
                        attempt_context(record) for record in attempt_records(execution=obj)
                    ],
                    "steps_html": steps_html(obj, request) if obj.job.kind == JobKind.BATCH else "",
                    "skipped_items": execution_skipped_items(execution=obj),
                    "ended": obj.status not in ACTIVE_STATUSES,
                    **page_urls(obj),
                }
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    # --- fields ----------------------------------------------------------------------------

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, execution: BatchLog) -> str:
        badge = status_badge(execution.status)
        if execution.status == ExecutionStatus.QUEUED and execution.held_reason:
            # Held by a limit: why it waits, where the operator looks first.
            badge = format_html(
                '{}<div class="help">{}</div>', badge, held_reason_shown(execution.held_reason)
            )
        return format_html("{} {}", badge, set_aside_marker(execution))

    @admin.display(description=_("created"), ordering="created_at")
    def created_when(self, execution: BatchLog) -> str:
        return compact_moment(execution.created_at)

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
        return precise_duration(execution.duration_seconds)

    @admin.display(description=_("parameters"))
    def params_json(self, execution: BatchLog) -> str:
        return json_pre(execution.params)

    @admin.display(description=_("result"))
    def result_json(self, execution: BatchLog) -> str:
        return json_pre(execution.result)

    @admin.display(description=_("execution context"))
    def execution_context_json(self, execution: BatchLog) -> str:
        return json_pre(execution.execution_context)
