"""The audit trail: read-only, filterable by job, object, action and actor. A job's trail is its
changelist filtered by job (the "Audit trail" link on the job's page)."""

from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Model
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from batchjobs.models import AuditEntry

from .columns import moment_column
from .display import json_pre

# The list shows this many changed fields per entry; the entry's page shows them all.
SUMMARY_FIELDS = 4


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("moment", "actor_name", "action", "object_link", "job_name", "change_summary")
    list_filter = (
        "action",
        ("content_type", admin.RelatedOnlyFieldListFilter),
        ("job", admin.RelatedOnlyFieldListFilter),
        "actor_name",
        ("at", admin.DateFieldListFilter),
    )
    list_select_related = ("content_type",)
    search_fields = ("object_repr", "job_name", "actor_name")
    date_hierarchy = "at"
    show_full_result_count = False
    fields = (
        "moment",
        "actor_name",
        "actor",
        "action",
        "object_link",
        "job",
        "job_name",
        "changes_table",
    )
    readonly_fields = fields
    moment = moment_column(AuditEntry, "at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    @admin.display(description=_("object"))
    def object_link(self, entry: AuditEntry) -> str:
        model = entry.content_type.model_class()
        label = f"{entry.content_type.name}: {entry.object_repr}"
        if model is None or not model._default_manager.filter(pk=entry.object_id).exists():
            return label  # deleted since
        opts = model._meta
        try:
            url = reverse(
                f"admin:{opts.app_label}_{opts.model_name}_change", args=[entry.object_id]
            )
        except NoReverseMatch:
            return label
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.display(description=_("changes"))
    def change_summary(self, entry: AuditEntry) -> str:
        if not entry.changes:
            return "-"
        items = list(entry.changes.items())
        model = entry.content_type.model_class()
        shown = format_html_join(
            "; ",
            "<b>{}</b>: {} → {}",
            (
                (_label(model, name), _short(before), _short(after))
                for name, (before, after) in items[:SUMMARY_FIELDS]
            ),
        )
        if len(items) <= SUMMARY_FIELDS:
            return shown
        return format_html(
            gettext("{shown}; … {count} more"), shown=shown, count=len(items) - SUMMARY_FIELDS
        )

    @admin.display(description=_("before → after"))
    def changes_table(self, entry: AuditEntry) -> str:
        if not entry.changes:
            return "-"
        model = entry.content_type.model_class()
        rows = format_html_join(
            "",
            '<tr><th>{} <code class="quiet">{}</code></th><td>{}</td><td>{}</td></tr>',
            (
                (_label(model, name), name, json_pre(before), json_pre(after))
                for name, (before, after) in entry.changes.items()
            ),
        )
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            gettext("field"),
            gettext("before"),
            gettext("after"),
            rows,
        )


def _label(model: type[Model] | None, name: str) -> str:
    """A changed field as its form labels it (in the operator's language); its name when the
    model no longer has it."""
    try:
        field = model._meta.get_field(name) if model is not None else None
    except FieldDoesNotExist:
        field = None
    return str(getattr(field, "verbose_name", name))


def _short(value) -> str:
    text = "-" if value in (None, "", [], {}) else str(value)
    return text if len(text) <= 60 else text[:59] + "…"
