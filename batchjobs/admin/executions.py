"""Executions (BatchLog) and their attempts: a read-only record. Only workers and services
write them; a superuser may delete old ones."""

from django.contrib import admin
from django.http import HttpRequest

from batchjobs.models import BatchAttempt, BatchLog

from .display import duration_text, json_pre, status_badge, text_pre


class BatchAttemptInline(admin.TabularInline):
    model = BatchAttempt
    fields = (
        "number",
        "status",
        "worker",
        "started_at",
        "finished_at",
        "duration",
        "http_status",
        "response",
        "error_text",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_view_permission(self, request: HttpRequest, obj: BatchLog | None = None) -> bool:
        # Attempts are part of the execution: whoever may see the execution sees its attempts.
        return self.admin_site.get_model_admin(self.parent_model).has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: BatchLog | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: BatchLog | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: BatchLog | None = None) -> bool:
        return False

    @admin.display(description="duration")
    def duration(self, attempt: BatchAttempt) -> str:
        return duration_text(attempt.duration_seconds)

    @admin.display(description="response excerpt")
    def response(self, attempt: BatchAttempt) -> str:
        return text_pre(attempt.response_excerpt)

    @admin.display(description="error")
    def error_text(self, attempt: BatchAttempt) -> str:
        return text_pre(attempt.error)


@admin.register(BatchLog)
class BatchLogAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "job",
        "status_badge",
        "trigger",
        "scheduled_for",
        "attempts_used",
        "created_at",
        "duration",
    )
    list_filter = ("job", "status", "trigger", ("created_at", admin.DateFieldListFilter))
    list_select_related = ("job",)
    search_fields = ("job__name", "idempotency_key", "worker")
    # Counting a table that grows with every run on each page view costs more than it tells.
    show_full_result_count = False
    inlines = [BatchAttemptInline]
    readonly_fields = (
        "status_badge",
        "attempts_used",
        "duration",
        "progress",
        "params_json",
        "result_json",
        "error_text",
        "execution_context_json",
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
                    "scheduled_for",
                    "created_by",
                    "idempotency_key",
                )
            },
        ),
        ("Attempts", {"fields": ("attempts_used", "worker", "next_attempt_at", "exclusive")}),
        (
            "Timing",
            {
                "fields": (
                    "created_at",
                    "published_at",
                    "started_at",
                    "heartbeat_at",
                    "finished_at",
                    "duration",
                )
            },
        ),
        (
            "Outcome",
            {"fields": ("note", "progress", "params_json", "result_json", "error_text")},
        ),
        ("Execution context", {"classes": ("collapse",), "fields": ("execution_context_json",)}),
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: BatchLog | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: BatchLog | None = None) -> bool:
        return request.user.is_superuser

    @admin.display(description="status", ordering="status")
    def status_badge(self, execution: BatchLog) -> str:
        return status_badge(execution.status)

    @admin.display(description="attempts")
    def attempts_used(self, execution: BatchLog) -> str:
        return f"{execution.attempts}/{execution.max_attempts}"

    @admin.display(description="duration")
    def duration(self, execution: BatchLog) -> str:
        return duration_text(execution.duration_seconds)

    @admin.display(description="progress")
    def progress(self, execution: BatchLog) -> str:
        if execution.progress_done is None:
            return "-"
        if execution.progress_total is None:
            return str(execution.progress_done)
        return f"{execution.progress_done} / {execution.progress_total}"

    @admin.display(description="parameters")
    def params_json(self, execution: BatchLog) -> str:
        return json_pre(execution.params)

    @admin.display(description="result")
    def result_json(self, execution: BatchLog) -> str:
        return json_pre(execution.result)

    @admin.display(description="error")
    def error_text(self, execution: BatchLog) -> str:
        return text_pre(execution.error)

    @admin.display(description="execution context")
    def execution_context_json(self, execution: BatchLog) -> str:
        return json_pre(execution.execution_context)
