"""A schedule's account of occurrences, read-only: what became of each nominal fire, filtered
by outcome and schedule (a schedule's page links here, filtered to it). Beat, a resume and a
backfill write the records (scheduling.occurrences); nobody edits them by hand."""

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext, gettext_lazy

from batchjobs.models import BatchLog, BatchSchedule, ScheduleOccurrence

from .display import change_link, stamp


@admin.register(ScheduleOccurrence)
class ScheduleOccurrenceAdmin(admin.ModelAdmin):
    list_display = ("fire", "schedule_link", "outcome", "fires", "reason", "execution_link",
                    "recorded")  # fmt: skip
    list_filter = ("outcome", ("schedule", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("schedule__job",)
    search_fields = ("reason", "schedule__job__name", "schedule__description")
    ordering = ("-scheduled_for", "-pk")
    fields = ("schedule_link", "fire", "fires", "outcome", "reason", "execution_link", "due",
              "recorded")  # fmt: skip
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # retention purges them with the executions

    @admin.display(description=gettext_lazy("fire"), ordering="scheduled_for")
    def fire(self, obj: ScheduleOccurrence) -> str:
        if obj.last_scheduled_for is None:
            return stamp(obj.scheduled_for)
        return gettext("%(first)s to %(last)s") % {
            "first": stamp(obj.scheduled_for),
            "last": stamp(obj.last_scheduled_for),
        }

    @admin.display(description=gettext_lazy("schedule"), ordering="schedule")
    def schedule_link(self, obj: ScheduleOccurrence) -> SafeString:
        return change_link(BatchSchedule, obj.schedule_id, obj.schedule)

    @admin.display(description=gettext_lazy("execution"))
    def execution_link(self, obj: ScheduleOccurrence) -> SafeString | str:
        if obj.execution_id is None:
            return "-"
        return change_link(BatchLog, obj.execution_id, f"#{obj.execution_id}")

    @admin.display(description=gettext_lazy("due at"))
    def due(self, obj: ScheduleOccurrence) -> str:
        return stamp(obj.due_at) if obj.due_at is not None else "-"

    @admin.display(description=gettext_lazy("recorded at"), ordering="recorded_at")
    def recorded(self, obj: ScheduleOccurrence) -> str:
        return stamp(obj.recorded_at)


def schedule_occurrences_link(schedule: BatchSchedule) -> SafeString:
    """The schedule's account of occurrences in the admin (for its page)."""
    url = reverse("admin:batchjobs_scheduleoccurrence_changelist")
    return format_html(
        '<a href="{}?schedule__id__exact={}">{}</a>',
        url,
        schedule.pk,
        gettext("What became of each fire (occurrences)"),
    )
