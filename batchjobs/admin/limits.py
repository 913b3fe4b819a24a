"""Run limits: at most N runs at once per queue or per target host, and calls per second per
host, shared by every worker. Saves and deletes go through the limit services, which audit
them and wake the executions a limit holds, so a raised limit takes effect at once."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from batchjobs.models import RunLimit
from batchjobs.selectors.limits import limit_list
from batchjobs.services.limits import (
    limit_delete,
    limit_name_normalised,
    limit_save,
    limit_validate,
)

from .columns import moment_column
from .forms import ServiceRulesForm


class RunLimitAdminForm(ServiceRulesForm):
    class Meta:
        model = RunLimit
        fields = ("scope", "name", "max_running", "max_per_second")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}  # a ModelForm's is its cleaned_data, never None
        # A host as job URLs name it ("Example.COM" is example.com), as the API saves it.
        if isinstance(cleaned.get("name"), str):
            cleaned["name"] = limit_name_normalised(
                scope=cleaned.get("scope", ""), name=cleaned["name"]
            )
        return cleaned

    def service_validate(self) -> None:
        limit_validate(limit=self.instance)


@admin.register(RunLimit)
class RunLimitAdmin(admin.ModelAdmin):
    form = RunLimitAdminForm
    list_display = ("name", "scope", "max_running", "max_per_second", "waiting", "running")
    list_filter = ("scope",)
    search_fields = ("name",)
    readonly_fields = ("waiting", "running", "updated")
    fieldsets = [
        (None, {"fields": ("scope", "name", "max_running", "max_per_second")}),
        (_("Now"), {"fields": ("waiting", "running", "updated")}),
    ]
    updated = moment_column(RunLimit, "updated_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[RunLimit]:
        return limit_list()

    def get_fieldsets(self, request: HttpRequest, obj: RunLimit | None = None):
        fieldsets = super().get_fieldsets(request, obj)
        return fieldsets if obj is not None else fieldsets[:1]  # nothing counted yet

    def save_model(self, request: HttpRequest, obj: RunLimit, form, change: bool) -> None:
        limit_save(limit=obj, user=request.user)

    def delete_model(self, request: HttpRequest, obj: RunLimit) -> None:
        limit_delete(limit=obj, user=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[RunLimit]) -> None:
        for limit in queryset:
            limit_delete(limit=limit, user=request.user)

    @admin.display(description=_("waiting"), ordering="waiting")
    def waiting(self, limit: RunLimit) -> int:
        """Executions QUEUED now because this limit holds them."""
        return vars(limit).get("waiting", 0)  # limit_list's annotation

    @admin.display(description=_("running"), ordering="running")
    def running(self, limit: RunLimit) -> int:
        """Its executions running now: of the queue's jobs, or of the jobs calling the host."""
        return vars(limit).get("running", 0)
