"""Schedules: when each job runs. Saves, deletes, pauses and resumes go through the schedule
services, which compute next_fire_at and wake beat; the fire state is beat's to write."""

from django.contrib import admin
from django.contrib.admin.utils import model_ngettext
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from batchjobs.models import BatchSchedule, ScheduleKind
from batchjobs.services.schedules import (
    cron_describe,
    schedule_delete,
    schedule_pause,
    schedule_preview,
    schedule_resume,
    schedule_save,
)

from .forms import BatchScheduleAdminForm

PREVIEW_COUNT = 10


@admin.register(BatchSchedule)
class BatchScheduleAdmin(admin.ModelAdmin):
    form = BatchScheduleAdminForm
    list_display = ("job", "kind", "summary", "timezone", "paused", "next_fire_at")
    list_display_links = ("summary",)
    list_filter = ("kind", "paused", "misfire_policy", "timezone")
    list_select_related = ("job",)
    search_fields = ("job__name", "description", "cron_expression")
    autocomplete_fields = ("job",)
    actions = ["pause", "resume"]
    readonly_fields = (
        "run_count",
        "next_fire_at",
        "last_fire_at",
        "upcoming_fires",
        "created_at",
        "updated_at",
    )
    fieldsets = [
        (None, {"fields": ("job", "description", "paused")}),
        (
            "When",
            {
                "fields": (
                    "kind",
                    "run_at",
                    ("interval_every", "interval_unit"),
                    "cron_expression",
                    "timezone",
                    "jitter_seconds",
                )
            },
        ),
        ("Window", {"fields": ("start_at", "end_at", "max_runs")}),
        (
            "Missed fires and daylight saving time",
            {
                "fields": (
                    "misfire_policy",
                    "misfire_grace_seconds",
                    ("catch_up_window_seconds", "catch_up_max"),
                    "dst_gap_policy",
                    "dst_fold_policy",
                )
            },
        ),
        ("Parameters", {"fields": ("params",)}),
        (
            "State",
            {
                "fields": (
                    "next_fire_at",
                    "upcoming_fires",
                    "last_fire_at",
                    "run_count",
                    "created_at",
                    "updated_at",
                )
            },
        ),
    ]

    def save_model(self, request: HttpRequest, obj: BatchSchedule, form, change: bool) -> None:
        schedule_save(schedule=obj)

    def delete_model(self, request: HttpRequest, obj: BatchSchedule) -> None:
        schedule_delete(schedule=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[BatchSchedule]) -> None:
        for schedule in queryset:
            schedule_delete(schedule=schedule)

    @admin.action(description="Pause", permissions=["change"])
    def pause(self, request: HttpRequest, queryset: QuerySet[BatchSchedule]) -> None:
        for schedule in queryset:
            schedule_pause(schedule=schedule)
        self.message_user(request, f"Paused {len(queryset)} {model_ngettext(queryset)}.")

    @admin.action(description="Resume", permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[BatchSchedule]) -> None:
        for schedule in queryset:
            schedule_resume(schedule=schedule)
        self.message_user(request, f"Resumed {len(queryset)} {model_ngettext(queryset)}.")

    @admin.display(description="summary")
    def summary(self, schedule: BatchSchedule) -> str:
        if schedule.kind == ScheduleKind.CRON:
            description = cron_describe(schedule.cron_expression)
            if description:
                return f"{schedule.summary} ({description})"
        return schedule.summary

    @admin.display(description=f"next {PREVIEW_COUNT} fires")
    def upcoming_fires(self, schedule: BatchSchedule) -> str:
        if schedule.pk is None:
            return "-"
        fires = schedule_preview(schedule=schedule, count=PREVIEW_COUNT)
        if not fires:
            return "None: the schedule has finished."
        rows = format_html_join(
            "",
            "<li>{} <span class='quiet'>({} UTC)</span>{}</li>",
            (
                (
                    f"{fire.local:%Y-%m-%d %H:%M:%S %Z}",
                    f"{fire.at:%Y-%m-%d %H:%M:%S}",
                    " — daylight saving time changes before this fire" if fire.dst_change else "",
                )
                for fire in fires
            ),
        )
        return format_html('<ul style="margin:0;padding-left:1.2em">{}</ul>', rows)
