"""Job dependencies in the admin: the edges (their own list, and a job's upstream jobs inline on
its page), a job's upstream and downstream graph drawn as nested lists with arrows, and on an
execution what triggered it and what it triggered. Saves and deletes go through the dependency
services, which refuse a cycle naming it, on the field, as the API does."""

from typing import TYPE_CHECKING

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from batchjobs.models import BatchJob, BatchLog, DependencyCondition, JobDependency
from batchjobs.selectors.dependencies import (
    GraphNode,
    dependency_list,
    execution_triggered,
    job_graph,
)
from batchjobs.services.dependencies import (
    dependency_delete,
    dependency_save,
    dependency_validate,
)

from .columns import moment_column
from .display import change_link, status_badge
from .forms import ServiceRulesForm

if TYPE_CHECKING:  # django-stubs is a development dependency
    from django_stubs_ext import StrOrPromise


class JobDependencyForm(ServiceRulesForm):
    class Meta:
        model = JobDependency
        fields = ("upstream", "downstream", "condition")

    def service_validate(self) -> None:
        dependency_validate(dependency=self.instance)


class UpstreamInline(admin.TabularInline):
    """On a job's page: the jobs whose end starts it."""

    model = JobDependency
    form = JobDependencyForm
    fk_name = "downstream"
    fields = ("upstream", "condition")
    autocomplete_fields = ("upstream",)
    extra = 0
    verbose_name = _("upstream job")
    verbose_name_plural = _("upstream jobs (their end starts this job)")


@admin.register(JobDependency)
class JobDependencyAdmin(admin.ModelAdmin):
    form = JobDependencyForm
    list_display = ("upstream", "arrow", "downstream", "condition", "created")
    list_display_links = ("arrow",)
    list_filter = ("condition",)
    search_fields = ("upstream__name", "downstream__name")
    autocomplete_fields = ("upstream", "downstream")
    created = moment_column(JobDependency, "created_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[JobDependency]:
        return dependency_list()

    def save_model(self, request: HttpRequest, obj: JobDependency, form, change: bool) -> None:
        dependency_save(dependency=obj, user=request.user)

    def delete_model(self, request: HttpRequest, obj: JobDependency) -> None:
        dependency_delete(dependency=obj, user=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[JobDependency]) -> None:
        for edge in queryset:
            dependency_delete(dependency=edge, user=request.user)

    @admin.display(description="")
    def arrow(self, edge: JobDependency) -> str:
        return "→"


# --- the graph on a job's page ---------------------------------------------------------------

CONDITION_SHOWN: dict[str, "StrOrPromise"] = {
    DependencyCondition.SUCCESS: _("on success"),
    DependencyCondition.FAILURE: _("on failure"),
    DependencyCondition.ALWAYS: _("always"),
}


def _nodes_html(nodes: list[GraphNode], *, arrow: str) -> SafeString | str:
    if not nodes:
        return ""
    return format_html(
        "<ul>{}</ul>",
        format_html_join("", "<li>{}</li>", ((_node_html(node, arrow=arrow),) for node in nodes)),
    )


def _node_html(node: GraphNode, *, arrow: str) -> SafeString:
    notes = [str(CONDITION_SHOWN.get(node.condition, node.condition))]
    if not node.enabled:
        notes.append(gettext("disabled"))
    if node.upstream_mode == "all":
        notes.append(gettext("fan-in"))
    if node.repeated:
        notes.append(gettext("shown above"))
    if node.truncated:
        notes.append(gettext("more beyond"))
    return format_html(
        '{} {} <span class="help">({})</span>{}',
        arrow,
        change_link(BatchJob, node.job_id, node.name),
        ", ".join(notes),
        _nodes_html(node.children, arrow=arrow),
    )


@admin.display(description=_("dependency graph"))
def job_dependency_graph(model_admin: admin.ModelAdmin, job: BatchJob | None) -> str:
    """A job's upstream jobs (← what starts it) and downstream jobs (→ what it starts)."""
    if job is None or job.pk is None:
        return "-"
    graph = job_graph(job=job)
    if not graph.upstream and not graph.downstream:
        return gettext("No upstream or downstream jobs.")
    mode = gettext("fan-in: starts once all upstream jobs ended for one logical time")
    return format_html(
        '<div class="bj-dependency-graph"><p>{}</p>{}<p><strong>{}</strong>{}</p><p>{}</p>{}</div>',
        gettext("Upstream jobs (their end starts this job):"),
        _nodes_html(graph.upstream, arrow="←") or "-",
        job.name,
        format_html(' <span class="help">({})</span>', mode) if job.upstream_mode == "all" else "",
        gettext("Downstream jobs (this job's end starts them):"),
        _nodes_html(graph.downstream, arrow="→") or "-",
    )


# --- on an execution's page ------------------------------------------------------------------


@admin.display(description=_("triggered by"))
def execution_triggered_by(model_admin: admin.ModelAdmin, execution: BatchLog) -> str:
    """The upstream execution whose end started this one."""
    upstream = execution.triggered_by
    if upstream is None:
        return "-"
    return format_html(
        "{} {}",
        change_link(BatchLog, upstream.pk, f"#{upstream.pk} {upstream.job.name}"),
        status_badge(upstream.status),
    )


@admin.display(description=_("triggered"))
def execution_triggered_runs(model_admin: admin.ModelAdmin, execution: BatchLog) -> str:
    """The downstream runs this execution's end started."""
    runs = execution_triggered(execution=execution)
    if not runs:
        return "-"
    return format_html(
        "<ul>{}</ul>",
        format_html_join(
            "",
            "<li>→ {} {}</li>",
            (
                (
                    change_link(BatchLog, run.pk, f"#{run.pk} {run.job.name}"),
                    status_badge(run.status),
                )
                for run in runs
            ),
        ),
    )
