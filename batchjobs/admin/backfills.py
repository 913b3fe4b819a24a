"""Backfills: the list with each one's progress, pause/resume/cancel, and the form that starts
one from a schedule's page ("Backfill…"), with a dry-run preview of the fire times first.
Everything goes through services/backfills.py; the driver's counters are read-only here."""

from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, gettext_lazy, ngettext

from batchjobs.errors import Conflict, InvalidInput, PermissionRequired
from batchjobs.models import Backfill, BatchSchedule
from batchjobs.rules.bounds import BACKFILL_CONFIRM_FIRES, MAX_BACKFILL_CONCURRENCY
from batchjobs.selectors.backfills import (
    backfill_list,
    backfill_progress_text,
    fires_count_text,
)
from batchjobs.services.backfills import (
    DryRun,
    backfill_cancel,
    backfill_create,
    backfill_pause,
    backfill_resume,
)

from .display import change_link, moment, stamp
from .forms import JSONTextField, form_add_service_errors


class BackfillForm(forms.Form):
    range_start = forms.DateTimeField(
        label=gettext_lazy("From"),
        widget=forms.TextInput(attrs={"placeholder": "2026-11-01 00:00", "size": 24}),
        help_text=gettext_lazy("The first fire time included, in the schedule's time zone."),
    )
    range_end = forms.DateTimeField(
        label=gettext_lazy("To"),
        widget=forms.TextInput(attrs={"placeholder": "2026-11-30 23:59", "size": 24}),
        help_text=gettext_lazy(
            "The last fire time included, in the schedule's time zone; not in the future."
        ),
    )
    max_concurrency = forms.IntegerField(
        label=gettext_lazy("Max concurrency"),
        initial=1,
        min_value=1,
        max_value=MAX_BACKFILL_CONCURRENCY,
        help_text=gettext_lazy("At most this many of its runs queued or running at once."),
    )
    params = JSONTextField(
        empty=dict,
        initial=dict,
        required=False,
        label=gettext_lazy("Parameters"),
        help_text=gettext_lazy("A JSON object merged over the schedule's parameters for each run."),
    )
    confirm = forms.BooleanField(
        required=False,
        label=gettext_lazy("Confirm a large range"),
        help_text=gettext_lazy("Needed when the range holds more than 1,000,000 fires."),
    )


@admin.register(Backfill)
class BackfillAdmin(admin.ModelAdmin):
    list_display = ("id", "schedule_link", "range", "status", "progress", "created_by", "created")
    list_filter = ("status",)
    search_fields = ("schedule__job__name",)
    actions = ["pause", "resume", "cancel"]
    readonly_fields = (
        "schedule_link", "range", "max_concurrency", "status", "progress", "fires_total",
        "fires_created", "fires_existing", "cursor", "params", "created_by", "created",
        "finished_at", "executions_link",
    )  # fmt: skip
    fields = readonly_fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Backfill]:
        return backfill_list()

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Starting a backfill starts runs of the schedule's job.
        return super().has_add_permission(request) and request.user.has_perm(
            "batchjobs.run_batchjob"
        )

    def has_delete_permission(self, request: HttpRequest, obj: Backfill | None = None) -> bool:
        return False  # cancel instead: its runs keep the record of what it did

    @admin.display(description=gettext_lazy("schedule"))
    def schedule_link(self, backfill: Backfill) -> str:
        schedule = backfill.schedule
        return change_link(BatchSchedule, schedule.pk, f"{schedule.job.name} — {schedule.summary}")

    @admin.display(description=gettext_lazy("range"))
    def range(self, backfill: Backfill) -> str:
        zone = ZoneInfo(backfill.schedule.timezone)
        return f"{stamp(backfill.range_start, zone)} – {stamp(backfill.range_end, zone)}"

    @admin.display(description=gettext_lazy("progress"))
    def progress(self, backfill: Backfill) -> str:
        return backfill_progress_text(backfill)

    @admin.display(description=gettext_lazy("created at"), ordering="created_at")
    def created(self, backfill: Backfill) -> str:
        return moment(backfill.created_at)

    @admin.display(description=gettext_lazy("executions"))
    def executions_link(self, backfill: Backfill) -> str:
        url = reverse("admin:batchjobs_batchlog_changelist") + f"?backfill__id__exact={backfill.pk}"
        return format_html('<a href="{}">{}</a>', url, gettext("Its executions"))

    def _operate(self, request: HttpRequest, queryset: QuerySet[Backfill], service, done: str):
        changed = 0
        for backfill in queryset:
            try:
                service(backfill_id=backfill.pk, user=request.user)
                changed += 1
            except Conflict as error:
                self.message_user(request, str(error), level="warning")
        self.message_user(request, done % {"count": changed})

    @admin.action(description=gettext_lazy("Pause"), permissions=["change"])
    def pause(self, request: HttpRequest, queryset: QuerySet[Backfill]) -> None:
        self._operate(request, queryset, backfill_pause, gettext("Paused %(count)d backfill(s)."))

    @admin.action(description=gettext_lazy("Resume"), permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Backfill]) -> None:
        self._operate(request, queryset, backfill_resume, gettext("Resumed %(count)d backfill(s)."))

    @admin.action(description=gettext_lazy("Cancel (stop its queued runs)"), permissions=["change"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Backfill]) -> None:
        self._operate(
            request, queryset, backfill_cancel, gettext("Cancelled %(count)d backfill(s).")
        )

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context=None
    ) -> HttpResponse:
        """The "Backfill…" form of one schedule (?schedule=ID): Preview lists the fire times
        and saves nothing; Start creates the backfill."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        schedule_id = request.GET.get("schedule", "")
        schedule = (
            BatchSchedule.objects.select_related("job").filter(pk=schedule_id).first()
            if schedule_id.isdigit()
            else None
        )
        if schedule is None:
            self.message_user(
                request, gettext("Start a backfill from a schedule's page."), level="warning"
            )
            return HttpResponseRedirect(reverse("admin:batchjobs_batchschedule_changelist"))
        zone = ZoneInfo(schedule.timezone)
        form = BackfillForm(request.POST if request.method == "POST" else None)
        preview: DryRun | None = None
        # Times typed without an offset are the schedule's local times.
        with timezone.override(zone):
            valid = form.is_bound and form.is_valid()
        if valid:
            dry_run = "_preview" in request.POST
            try:
                result = backfill_create(
                    schedule=schedule, user=request.user, dry_run=dry_run, **form.cleaned_data
                )
            except InvalidInput as error:
                form_add_service_errors(form, error)
            except PermissionRequired as error:
                form.add_error(None, str(error))
            else:
                if isinstance(result, DryRun):
                    preview = result
                else:
                    link = change_link(Backfill, result.pk, f"#{result.pk}")
                    self.message_user(
                        request,
                        format_html(
                            gettext("Started backfill {backfill}: {progress}."),
                            backfill=link,
                            progress=backfill_progress_text(result),
                        ),
                    )
                    return HttpResponseRedirect(reverse("admin:batchjobs_backfill_changelist"))
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Backfill %(job)s") % {"job": schedule.job.name},
            "schedule": schedule,
            "form": form,
            "preview": preview,
            "preview_fires": [
                (
                    stamp(item.fire, zone),
                    item.execution_id,
                    item.excluded,
                    item.reason,
                    stamp(item.moved_to, zone) if item.moved_to else "",
                )
                for item in (preview.fires if preview else [])
            ],
            "preview_total": _total_text(preview) if preview else "",
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/batchjobs/backfill/add.html", context)


def _total_text(preview: DryRun) -> str:
    count = fires_count_text(preview.total, estimated=preview.estimated)
    if preview.needs_confirm:
        return gettext("%(count)s fires, more than %(bound)s: confirm to start it.") % {
            "count": count,
            "bound": f"{BACKFILL_CONFIRM_FIRES:,}",
        }
    text = ngettext(
        "%(count)s fire in the range (%(existing)s of those listed already run).",
        "%(count)s fires in the range (%(existing)s of those listed already run).",
        preview.total,
    ) % {"count": count, "existing": preview.existing}
    if preview.excluded or preview.moved:
        text += " " + gettext(
            "Of those listed, %(excluded)s excluded and %(moved)s moved by calendars."
        ) % {"excluded": preview.excluded, "moved": preview.moved}
    return text
