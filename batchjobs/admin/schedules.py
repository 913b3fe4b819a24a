"""Schedules: when each job runs. Saves, deletes, pauses and resumes go through the schedule
services, which compute next_fire_at and wake beat; the fire state is beat's to write."""

from typing import cast

from django.contrib import admin
from django.contrib.admin.utils import model_ngettext
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.utils.html import format_html, format_html_join

from batchjobs.models import BatchSchedule, ScheduleKind
from batchjobs.models.schedule import DstFoldPolicy, DstGapPolicy
from batchjobs.models.set_aside import set_aside_reason
from batchjobs.rules.cron import cron_errors
from batchjobs.rules.zone import timezone_errors
from batchjobs.services.schedules import (
    cron_describe,
    schedule_delete,
    schedule_pause,
    schedule_preview,
    schedule_resume,
    schedule_save,
)

from .display import SetAsideFilter, set_aside_marker, set_aside_text
from .forms import BatchScheduleAdminForm

PREVIEW_COUNT = 10


@admin.register(BatchSchedule)
class BatchScheduleAdmin(admin.ModelAdmin):
    form = BatchScheduleAdminForm
    list_display = ("job", "kind", "summary", "timezone", "paused", "next_fire_at", "set_aside")
    list_display_links = ("summary",)
    list_filter = ("kind", "paused", SetAsideFilter, "misfire_policy", "timezone")
    list_select_related = ("job",)
    search_fields = ("job__name", "description", "cron_expression")
    autocomplete_fields = ("job",)
    actions = ["pause", "resume"]
    readonly_fields = (
        "set_aside_state",
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

    def get_form(
        self, request: HttpRequest, obj=None, change=False, **kwargs
    ) -> type[BatchScheduleAdminForm]:
        # A subclass of self.form made for this request, which django-stubs types only as a
        # ModelForm class.
        form = cast(type[BatchScheduleAdminForm], super().get_form(request, obj, change, **kwargs))
        form.user = request.user  # a class of this request's own
        return form

    def get_fieldsets(self, request: HttpRequest, obj: BatchSchedule | None = None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None and obj.set_aside_at is not None:  # first: it explains the page
            return [("Set aside by beat", {"fields": ("set_aside_state",)}), *fieldsets]
        return fieldsets

    def save_model(self, request: HttpRequest, obj: BatchSchedule, form, change: bool) -> None:
        schedule_save(schedule=obj, user=request.user)

    def delete_model(self, request: HttpRequest, obj: BatchSchedule) -> None:
        schedule_delete(schedule=obj, user=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[BatchSchedule]) -> None:
        for schedule in queryset:
            schedule_delete(schedule=schedule, user=request.user)

    @admin.action(description="Pause", permissions=["change"])
    def pause(self, request: HttpRequest, queryset: QuerySet[BatchSchedule]) -> None:
        for schedule in queryset:
            schedule_pause(schedule=schedule, user=request.user)
        self.message_user(request, f"Paused {len(queryset)} {model_ngettext(queryset)}.")

    @admin.action(description="Resume", permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[BatchSchedule]) -> None:
        for schedule in queryset:
            schedule_resume(schedule=schedule, user=request.user)
        self.message_user(request, f"Resumed {len(queryset)} {model_ngettext(queryset)}.")

    def get_urls(self):
        preview = path(
            "preview/",
            self.admin_site.admin_view(self.cron_preview_view),
            name="batchjobs_batchschedule_preview",
        )
        # Before the defaults: their "<path:object_id>/" pattern would swallow it.
        return [preview, *super().get_urls()]

    def cron_preview_view(self, request: HttpRequest) -> JsonResponse:
        """The form's live preview of a cron schedule being typed: its description in words
        and its next fires in its time zone, or the errors the save would show."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        expression = request.GET.get("cron_expression", "").strip()
        zone = request.GET.get("timezone", "").strip()
        errors = {"cron_expression": cron_errors(expression), "timezone": timezone_errors(zone)}
        errors = {field: messages for field, messages in errors.items() if messages}
        if errors:
            return JsonResponse({"errors": errors, "description": "", "fires": []})
        schedule = BatchSchedule(
            kind=ScheduleKind.CRON,
            cron_expression=expression,
            timezone=zone,
            dst_gap_policy=_choice(request, "dst_gap_policy", DstGapPolicy),
            dst_fold_policy=_choice(request, "dst_fold_policy", DstFoldPolicy),
        )
        fires = schedule_preview(schedule=schedule, count=PREVIEW_COUNT)
        return JsonResponse(
            {
                "errors": {},
                "description": cron_describe(expression),
                "fires": [
                    {
                        "local": f"{fire.local:%Y-%m-%d %H:%M:%S %Z}",
                        "utc": f"{fire.at:%Y-%m-%d %H:%M:%S}",
                        "dst_change": fire.dst_change,
                    }
                    for fire in fires
                ],
            }
        )

    @admin.display(description="summary")
    def summary(self, schedule: BatchSchedule) -> str:
        if schedule.kind == ScheduleKind.CRON:
            description = cron_describe(schedule.cron_expression)
            if description:
                return f"{schedule.summary} ({description})"
        return schedule.summary

    @admin.display(description="set aside")
    def set_aside(self, schedule: BatchSchedule) -> str:
        return set_aside_marker(schedule)

    @admin.display(description="state")
    def set_aside_state(self, schedule: BatchSchedule) -> str:
        return set_aside_text(
            schedule,
            what_to_do="Computing its fires raised, so beat does not fire it. "
            "Fix and save to fire again.",
        )

    @admin.display(description=f"next {PREVIEW_COUNT} fires")
    def upcoming_fires(self, schedule: BatchSchedule) -> str:
        if schedule.pk is None:
            return "-"
        try:
            fires = schedule_preview(schedule=schedule, count=PREVIEW_COUNT)
        except Exception as error:  # fields stored behind validation's back: the page still opens
            return f"Cannot be computed: {set_aside_reason(error)}"
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


def _choice(request: HttpRequest, name: str, choices) -> str:
    value = request.GET.get(name, "")
    return value if value in choices.values else choices.values[0]
