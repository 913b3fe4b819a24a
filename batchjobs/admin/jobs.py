"""Jobs: list with the latest outcome, a form grouped by kind with schedules inline, and the
run-now (with parameters at <job>/run/), enable and disable operations, all through services."""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypedDict, cast

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Model,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from batchjobs.errors import Conflict, InvalidInput, PermissionRequired
from batchjobs.models import (
    BatchJob,
    BatchLog,
    BatchSchedule,
    JobDependency,
    JobNotification,
    Trigger,
)
from batchjobs.secrets import headers_masked
from batchjobs.selectors.workers import queues_consumed
from batchjobs.services import operator
from batchjobs.services.dependencies import dependency_delete, dependency_save
from batchjobs.services.jobs import job_delete, job_save, job_set_enabled, job_test_fire
from batchjobs.services.notifications import notification_delete, notification_save
from batchjobs.services.schedules import schedule_delete, schedule_save

from .columns import moment_column
from .dependencies import UpstreamInline, job_dependency_graph
from .display import change_link, json_pre, status_badge
from .forms import (
    BatchJobAdminForm,
    BatchScheduleInlineForm,
    RunJobForm,
    form_add_service_errors,
    run_parameter_catalogue,
)
from .job_tools import JOB_TOOL_ACTIONS, JobToolsAdmin
from .notifications import JobNotificationInline
from .tags import TagFilter

if TYPE_CHECKING:  # django-stubs is a development dependency
    from django_stubs_ext import WithAnnotations

RUN_PERMISSION = "batchjobs.run_batchjob"
# Read-only pages render fields as stored, so they show this masked stand-in for the headers.
MASKED_HEADERS_FIELD = "http_headers_masked"


class JobListAnnotations(TypedDict):
    """What BatchJobAdmin.get_queryset adds to each job."""

    schedule_count: int
    last_execution_id: int | None
    last_execution_status: str | None
    # Whether a running worker consumes the job's queue; None when Redis cannot tell.
    queue_consumed: bool | None


if TYPE_CHECKING:
    ListedJob = WithAnnotations[BatchJob, JobListAnnotations]
else:
    ListedJob = BatchJob


class BatchScheduleInline(admin.StackedInline):
    """One stacked block per schedule, not a table row: a row of every kind's boxes was ~2,100
    px wide. schedule_form.js shows only the fields of the row's kind, with its live preview."""

    model = BatchSchedule
    form = BatchScheduleInlineForm
    fields = (
        "kind",
        "timezone",
        "run_at",
        "delay",
        ("interval_every", "interval_unit"),
        "cron_expression",
        ("description", "paused"),
        "next_fire",
    )
    readonly_fields = ("next_fire",)
    extra = 0
    show_change_link = True
    next_fire = moment_column(BatchSchedule, "next_fire_at")


@admin.register(BatchJob)
class BatchJobAdmin(JobToolsAdmin):
    form = BatchJobAdminForm
    # The last run's status next to the name: a long target wraps, and the columns past it
    # may go out of sight at 1,400 px with the navigation sidebar open.
    list_display = (
        "name", "last_execution", "what_it_runs", "enabled", "schedule_count", "tag_list",
    )  # fmt: skip
    list_filter = ("kind", "enabled", TagFilter, "overlap_policy", "queue")
    search_fields = ("name", "description", "http_url", "handler_name")
    readonly_fields = (
        "created", "updated", "created_by", MASKED_HEADERS_FIELD, "dependency_graph",
    )  # fmt: skip
    inlines = [BatchScheduleInline, JobNotificationInline, UpstreamInline]
    actions = ["run_now", "enable", "disable", *JOB_TOOL_ACTIONS]
    # The kind-* classes let job_form.js show only the fieldsets of the chosen kind.
    fieldsets = [
        (None, {"fields": ("name", "description", "kind", "enabled", "tags")}),
        (
            _("HTTP call"),
            {
                "classes": ("kind-http",),
                "fields": (
                    "http_method",
                    "http_url",
                    "http_headers",
                    "http_body",
                    "http_expected_status",
                    "http_assertion_kind",
                    "http_assertion",
                    "http_assertion_value",
                    "retry_on_4xx",
                ),
            },
        ),
        (_("Python handler"), {"classes": ("kind-handler",), "fields": ("handler_name",)}),
        (_("Batch job"), {"classes": ("kind-batch",), "fields": ("batch_job_name",)}),
        (_("Parameters"), {"classes": ("kind-handler", "kind-batch"), "fields": ("params",)}),
        (
            _("Retries and policy"),
            {
                "fields": (
                    "timeout_seconds",
                    "max_attempts",
                    ("retry_backoff_seconds", "retry_backoff_max_seconds"),
                    "retry_jitter",
                    ("overlap_policy", "max_running"),
                    ("queue", "priority"),
                )
            },
        ),
        (_("Dependencies"), {"fields": ("upstream_mode", "dependency_graph")}),
        (
            _("Record"),
            {"classes": ("collapse",), "fields": ("created", "updated", "created_by")},
        ),
    ]
    created = moment_column(BatchJob, "created_at")
    dependency_graph = job_dependency_graph
    updated = moment_column(BatchJob, "updated_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[BatchJob]:
        latest = BatchLog.objects.filter(job=OuterRef("pk")).order_by("-created_at", "-id")
        consumed = queues_consumed()
        return (
            super()
            .get_queryset(request)
            .annotate(
                schedule_count=Count("schedules", distinct=True),
                last_execution_id=Subquery(latest.values("pk")[:1]),
                last_execution_status=Subquery(latest.values("status")[:1]),
                queue_consumed=(
                    Value(None, output_field=BooleanField())
                    if consumed is None
                    else Case(
                        When(queue__in=sorted(consumed), then=Value(True)),
                        default=Value(False),
                        output_field=BooleanField(),
                    )
                ),
            )
        )

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: BatchJob | None = None,
    ) -> HttpResponse:
        if obj is not None:  # got through get_queryset: annotated
            warning = queue_warning(obj.queue, cast("ListedJob", obj).queue_consumed)
            if warning:
                self.message_user(request, warning, messages.WARNING)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_fieldsets(self, request: HttpRequest, obj: BatchJob | None = None):
        if self.has_change_permission(request, obj):
            return self.fieldsets
        return [
            (
                name,
                {
                    **options,
                    "fields": tuple(
                        MASKED_HEADERS_FIELD if field == "http_headers" else field
                        for field in options["fields"]
                    ),
                },
            )
            for name, options in self.fieldsets
        ]

    def get_form(
        self, request: HttpRequest, obj=None, change=False, **kwargs
    ) -> type[BatchJobAdminForm]:
        # A subclass of self.form made for this request, which django-stubs types only as a
        # ModelForm class.
        form = cast(type[BatchJobAdminForm], super().get_form(request, obj, change, **kwargs))
        form.user = request.user  # a class of this request's own
        return form

    def save_model(self, request: HttpRequest, obj: BatchJob, form, change: bool) -> None:
        job_save(job=obj, user=request.user)

    def delete_model(self, request: HttpRequest, obj: BatchJob) -> None:
        job_delete(job=obj, user=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[BatchJob]) -> None:
        for job in queryset:
            job_delete(job=job, user=request.user)

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:
        # Through the services: schedules get next_fire_at and wake beat; both are audited.
        services: dict[type[Model], tuple[Callable[..., object], Callable[..., object], str]]
        services = {
            BatchSchedule: (schedule_save, schedule_delete, "schedule"),
            JobNotification: (notification_save, notification_delete, "notification"),
            JobDependency: (dependency_save, dependency_delete, "dependency"),
        }
        save, delete, field = services[formset.model]
        changed = formset.save(commit=False)
        for obj in formset.deleted_objects:
            delete(**{field: obj, "user": request.user})
        for obj in changed:
            save(**{field: obj, "user": request.user})

    def has_run_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(RUN_PERMISSION)

    # One column for what the job runs and where (its kind and queue on a quiet second line):
    # with a column each, the list did not fit 1,400 px beside the sidebar.
    @admin.display(description=_("what it runs"), ordering="kind")
    def what_it_runs(self, job: ListedJob) -> str:
        queue = job.queue
        if job.queue_consumed is False:
            queue = format_html(
                '{} <span class="bj-no-consumer" style="color:#c62828" title="{}">'
                "&#9888; {}</span>",
                job.queue,
                queue_warning(job.queue, False),
                gettext("no worker"),
            )
        return format_html(
            '<span class="bj-target">{}</span><br><small class="bj-quiet">{} · {}</small>',
            job.target,
            job.get_kind_display(),
            queue,
        )

    @admin.display(description=_("last execution"))
    def last_execution(self, job: ListedJob) -> str:
        # Both come from the same latest row: both None when the job never ran.
        if job.last_execution_id is None or job.last_execution_status is None:
            return "-"
        return change_link(BatchLog, job.last_execution_id, status_badge(job.last_execution_status))

    @admin.display(description=_("schedules"), ordering="schedule_count")
    def schedule_count(self, job: ListedJob) -> int:
        return job.schedule_count

    @admin.display(description=_("HTTP headers"))
    def http_headers_masked(self, job: BatchJob) -> str:
        return json_pre(headers_masked(job.http_headers))

    @admin.action(description=_("Run now (default parameters)"), permissions=["run"])
    def run_now(self, request: HttpRequest, queryset: QuerySet[BatchJob]) -> None:
        queued = []
        for job in queryset:
            try:
                queued.append(
                    operator.job_start(job_name=job.name, trigger=Trigger.MANUAL, user=request.user)
                )
            except (Conflict, InvalidInput, PermissionRequired) as error:
                refused = gettext("Job %(name)s was not started: %(error)s") % {
                    "name": repr(job.name),
                    "error": error,
                }
                self.message_user(request, refused, messages.ERROR)
        if queued:
            links = format_html_join(
                ", ",
                "{}",
                ((change_link(BatchLog, e.pk, f"#{e.pk} {e.job.name}"),) for e in queued),
            )
            queued_text = format_html(gettext("Queued {executions}."), executions=links)
            self.message_user(request, queued_text, messages.SUCCESS)

    @admin.action(description=_("Enable"), permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[BatchJob]) -> None:
        self._set_enabled(request, queryset, enabled=True)

    @admin.action(description=_("Disable"), permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[BatchJob]) -> None:
        self._set_enabled(request, queryset, enabled=False)

    def _set_enabled(self, request: HttpRequest, queryset: QuerySet[BatchJob], *, enabled: bool):
        for job in queryset:
            job_set_enabled(job=job, enabled=enabled, user=request.user)
        count = len(queryset)
        if enabled:
            done = ngettext("Enabled %(count)d batch job.", "Enabled %(count)d batch jobs.", count)
        else:
            done = ngettext(
                "Disabled %(count)d batch job.", "Disabled %(count)d batch jobs.", count
            )
        self.message_user(request, done % {"count": count})

    def get_urls(self):
        run_url = path(
            "<path:object_id>/run/",
            self.admin_site.admin_view(self.run_view),
            name="batchjobs_batchjob_run",
        )
        test_fire_url = path(
            "<path:object_id>/test-fire/",
            self.admin_site.admin_view(self.test_fire_view),
            name="batchjobs_batchjob_test_fire",
        )
        # Before the defaults: their "<path:object_id>/" pattern would swallow them.
        return [run_url, test_fire_url, *super().get_urls()]

    def test_fire_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """One real call of an HTTP job, request and response shown, nothing recorded."""
        if not self.has_run_permission(request):
            raise PermissionDenied
        job = self._job_or_redirect(request, object_id)
        if isinstance(job, HttpResponse):
            return job
        context = {**self.admin_site.each_context(request), "opts": self.opts, "job": job,
                   "title": gettext("Test fire %(name)s") % {"name": job.name}}  # fmt: skip
        if request.method == "POST":
            try:
                context["report"] = job_test_fire(job=job)
            except Conflict as exc:
                context["error"] = str(exc)
        return TemplateResponse(request, "admin/batchjobs/batchjob/test_fire.html", context)

    def run_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Run one job now with parameters typed as JSON; errors show next to the field."""
        if not self.has_run_permission(request):
            raise PermissionDenied
        job = self._job_or_redirect(request, object_id)
        if isinstance(job, HttpResponse):
            return job
        # The page shows the job's target and defaults: as much as its change page shows.
        if not self.has_view_permission(request, job):
            raise PermissionDenied
        form = RunJobForm(request.POST if request.method == "POST" else None)
        if form.is_bound and form.is_valid():
            try:
                execution = operator.job_start(
                    job_name=job.name,
                    trigger=Trigger.MANUAL,
                    params=form.cleaned_data["params"],
                    user=request.user,
                    logical_time=form.cleaned_data["logical_time"],
                )
            except InvalidInput as error:
                form_add_service_errors(form, error)
            except (Conflict, PermissionRequired) as error:
                form.add_error(None, str(error))
            else:
                link = change_link(BatchLog, execution.pk, f"#{execution.pk}")
                self.message_user(
                    request, format_html(gettext("Queued execution {execution}."), execution=link)
                )
                return HttpResponseRedirect(self._url_after_run(request, execution))
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Run %(name)s") % {"name": job.name},
            "original": job,
            "default_params": json_pre(job.params),
            "parameter_catalogue": run_parameter_catalogue(job),
            "form": form,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/batchjobs/batchjob/run.html", context)

    def _url_after_run(self, request: HttpRequest, execution: BatchLog) -> str:
        if self.admin_site.get_model_admin(BatchLog).has_view_permission(request, execution):
            return reverse("admin:batchjobs_batchlog_change", args=[execution.pk])
        return reverse("admin:batchjobs_batchjob_change", args=[execution.job_id])


def queue_warning(queue: str, consumed: bool | None) -> str:
    """What the job's page says when its runs would wait for a worker ("" when one runs)."""
    if consumed is None:
        return gettext(
            "Whether a running worker consumes queue %(queue)s is unknown: the broker (Redis) "
            "does not answer."
        ) % {"queue": repr(queue)}
    if not consumed:
        return gettext(
            "No running worker consumes queue %(queue)s: this job's runs wait QUEUED until a "
            "worker started with -Q %(name)s announces itself."
        ) % {"queue": repr(queue), "name": queue}
    return ""
