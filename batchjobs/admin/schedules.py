"""Schedules: when each job runs. Saves, deletes, pauses and resumes go through the schedule
services, which compute next_fire_at and wake beat; the fire state is beat's to write."""

from collections.abc import Mapping
from typing import Any, cast
from zoneinfo import ZoneInfo

from django.contrib import admin
from django.contrib.admin.utils import model_ngettext
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.utils import timezone
from django.utils.functional import lazy
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from batchjobs.errors import InvalidInput
from batchjobs.models import BatchSchedule, ScheduleKind
from batchjobs.models.set_aside import set_aside_reason
from batchjobs.rules.zone import MAX_ZONE_NAME, timezone_errors, zone_suggestions
from batchjobs.scheduling.preview import PreviewFire
from batchjobs.services.calendars import schedule_calendars_set
from batchjobs.services.schedules import (
    cron_describe,
    schedule_delete,
    schedule_describe,
    schedule_draft_preview,
    schedule_pause,
    schedule_preview,
    schedule_resume,
    schedule_save,
)

# Registers the operator's preferences page (the admin package imports this module).
from . import preferences  # noqa: F401
from .display import (
    SetAsideFilter,
    moment,
    moment_in_zone,
    relative_text,
    set_aside_marker,
    set_aside_text,
    stamp,
)
from .forms import BatchScheduleAdminForm, SchedulePreviewForm, offset_text
from .occurrences import schedule_occurrences_link

PREVIEW_COUNT = 10
ZONE_SUGGESTIONS = 12  # a picker's list: a screen's worth
# Translated when a page shows it, not when the module is imported.
UPCOMING_FIRES = lazy(
    lambda: (
        ngettext("next %(count)d fire", "next %(count)d fires", PREVIEW_COUNT)
        % {"count": PREVIEW_COUNT}
    ),
    str,
)()


@admin.register(BatchSchedule)
class BatchScheduleAdmin(admin.ModelAdmin):
    form = BatchScheduleAdminForm
    list_display = ("job", "kind", "summary", "timezone", "paused", "next_fire", "set_aside")
    list_display_links = ("summary",)
    list_filter = ("kind", "paused", SetAsideFilter, "misfire_policy", "timezone", "calendars")
    list_select_related = ("job",)
    search_fields = ("job__name", "description", "cron_expression")
    autocomplete_fields = ("job",)
    filter_horizontal = ("calendars",)
    actions = ["pause", "resume"]
    readonly_fields = (
        "set_aside_state",
        "run_count",
        "next_fire_in_zone",
        "last_fire",
        "upcoming_fires",
        "created",
        "updated",
        "occurrences",
    )
    fieldsets = [
        (None, {"fields": ("job", "description", "paused")}),
        (
            gettext_lazy("When"),
            {
                # The zone first: the times below are typed and shown in it.
                "fields": (
                    "kind",
                    "timezone",
                    "run_at",
                    "delay",
                    ("interval_every", "interval_unit"),
                    "cron_expression",
                    "dst_gap_policy",
                    "dst_fold_policy",
                    "jitter_seconds",
                )
            },
        ),
        (gettext_lazy("Window"), {"fields": ("start_at", "end_at", "max_runs")}),
        (
            gettext_lazy("Missed fires"),
            {
                "fields": (
                    "misfire_policy",
                    "misfire_grace_seconds",
                    ("catch_up_window_seconds", "catch_up_max"),
                )
            },
        ),
        (gettext_lazy("Calendars"), {"fields": ("calendars", "calendar_policy")}),
        (gettext_lazy("Parameters"), {"fields": ("params",)}),
        (
            gettext_lazy("State"),
            {
                "fields": (
                    "next_fire_in_zone",
                    "upcoming_fires",
                    "last_fire",
                    "run_count",
                    "occurrences",
                    "created",
                    "updated",
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

    @admin.display(description=gettext_lazy("occurrences"))
    def occurrences(self, obj: BatchSchedule) -> str:
        return schedule_occurrences_link(obj) if obj.pk is not None else "-"

    def get_fieldsets(self, request: HttpRequest, obj: BatchSchedule | None = None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None and obj.set_aside_at is not None:  # first: it explains the page
            return [(_("Set aside by beat"), {"fields": ("set_aside_state",)}), *fieldsets]
        return fieldsets

    def render_change_form(
        self, request: HttpRequest, context, add=False, change=False, form_url="", obj=None
    ) -> HttpResponse:
        # The date and time boxes are in the schedule's zone: the admin's "Now" and its note on
        # the browser's clock count from that zone's offset, not the operator's.
        zone = ZoneInfo("UTC")
        if obj is not None and not timezone_errors(obj.timezone):
            zone = ZoneInfo(obj.timezone)
        offset = timezone.now().astimezone(zone).utcoffset()
        context["schedule_utc_offset"] = int(offset.total_seconds()) if offset else 0
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_model(self, request: HttpRequest, obj: BatchSchedule, form, change: bool) -> None:
        schedule_save(schedule=obj, user=request.user)

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        # The calendars through their service (audited, beat woken), not form.save_m2m().
        if "calendars" in form.cleaned_data:
            schedule_calendars_set(
                schedule=form.instance,
                calendars=list(form.cleaned_data["calendars"]),
                user=request.user,
            )
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request: HttpRequest, obj: BatchSchedule) -> None:
        schedule_delete(schedule=obj, user=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[BatchSchedule]) -> None:
        for schedule in queryset:
            schedule_delete(schedule=schedule, user=request.user)

    @admin.action(description=gettext_lazy("Pause"), permissions=["change"])
    def pause(self, request: HttpRequest, queryset: QuerySet[BatchSchedule]) -> None:
        for schedule in queryset:
            schedule_pause(schedule=schedule, user=request.user)
        count = len(queryset)
        self.message_user(
            request,
            ngettext("Paused %(count)d %(items)s.", "Paused %(count)d %(items)s.", count)
            % {"count": count, "items": model_ngettext(queryset)},
        )

    @admin.action(description=gettext_lazy("Resume"), permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[BatchSchedule]) -> None:
        for schedule in queryset:
            schedule_resume(schedule=schedule, user=request.user)
        count = len(queryset)
        self.message_user(
            request,
            ngettext("Resumed %(count)d %(items)s.", "Resumed %(count)d %(items)s.", count)
            % {"count": count, "items": model_ngettext(queryset)},
        )

    def get_urls(self):
        views = [
            path(
                "preview/",
                self.admin_site.admin_view(self.preview_view),
                name="batchjobs_batchschedule_preview",
            ),
            # Any signed-in operator's: the preferences page has a zone box too.
            path(
                "zones/",
                self.admin_site.admin_view(zone_suggestions_view),
                name="batchjobs_zone_suggestions",
            ),
        ]
        # Before the defaults: their "<path:object_id>/" pattern would swallow them.
        return [*views, *super().get_urls()]

    def preview_view(self, request: HttpRequest) -> JsonResponse:
        """The forms' live preview of a schedule being typed (the schedule page, or a schedule
        row of the job form, its fields named without the row's prefix), any kind: its timing
        in words and its next fires in its zone and the operator's, or the errors a save would
        show, by field. ?schedule=<id> previews the changes to a saved schedule (its interval
        anchor, calendars, jitter and runs left)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        schedule = BatchSchedule()
        if request.GET.get("schedule"):
            found = self.get_object(request, request.GET["schedule"])
            if found is None or not self.has_view_permission(request, found):
                return JsonResponse({"errors": {"schedule": [_("No such schedule.")]}}, status=404)
            schedule = found
        form = SchedulePreviewForm(request.GET, instance=schedule)
        if not form.is_valid():
            return _preview_refused(form, form.errors.get_json_data())
        try:
            fires = schedule_draft_preview(schedule=form.instance, count=PREVIEW_COUNT)
        except InvalidInput as error:
            return _preview_refused(form, error.field_errors)
        now = timezone.now()
        return JsonResponse(
            {
                "errors": {},
                "description": schedule_describe(form.instance),
                "fires": [
                    {
                        "local": stamp(fire.at, fire.local.tzinfo),
                        "utc": f"{fire.at:%Y-%m-%d %H:%M:%S}",
                        # In the operator's zone: the page shows it beside the local time.
                        "yours": stamp(fire.at),
                        "relative": relative_text(fire.at, now=now),
                        "dst_change": fire.dst_change,
                        "excluded": _calendar_note_text(fire),
                    }
                    for fire in fires
                ],
                "empty_text": _("None: the schedule has finished."),
                "dst_change_text": _("daylight saving time changes before this fire"),
            }
        )

    @admin.display(description=gettext_lazy("summary"))
    def summary(self, schedule: BatchSchedule) -> str:
        if schedule.kind == ScheduleKind.CRON:  # the expression, and what it means
            description = cron_describe(schedule.cron_expression)
            return f"{schedule.summary} ({description})" if description else schedule.summary
        # A once-schedule's time as it was typed: in the schedule's zone.
        return schedule_describe(schedule)

    @admin.display(description=gettext_lazy("next fire"), ordering="next_fire_at")
    def next_fire(self, schedule: BatchSchedule) -> SafeString | str:
        """The list's column: every row in the operator's zone, so the rows compare."""
        return moment(schedule.next_fire_at)

    @admin.display(description=gettext_lazy("next fire"))
    def next_fire_in_zone(self, schedule: BatchSchedule) -> SafeString | str:
        return moment_in_zone(schedule.next_fire_at, schedule.timezone)

    @admin.display(description=gettext_lazy("last fire"))
    def last_fire(self, schedule: BatchSchedule) -> SafeString | str:
        return moment_in_zone(schedule.last_fire_at, schedule.timezone)

    @admin.display(description=gettext_lazy("created at"))
    def created(self, schedule: BatchSchedule) -> SafeString | str:
        return moment_in_zone(schedule.created_at, schedule.timezone)

    @admin.display(description=gettext_lazy("updated at"))
    def updated(self, schedule: BatchSchedule) -> SafeString | str:
        return moment_in_zone(schedule.updated_at, schedule.timezone)

    @admin.display(description=gettext_lazy("set aside"))
    def set_aside(self, schedule: BatchSchedule) -> str:
        return set_aside_marker(schedule)

    @admin.display(description=gettext_lazy("state"))
    def set_aside_state(self, schedule: BatchSchedule) -> str:
        return set_aside_text(
            schedule,
            what_to_do=_(
                "Computing its fires raised, so beat does not fire it. Fix and save to fire again."
            ),
        )

    @admin.display(description=UPCOMING_FIRES)
    def upcoming_fires(self, schedule: BatchSchedule) -> str:
        if schedule.pk is None:
            return "-"
        try:
            fires = schedule_preview(schedule=schedule, count=PREVIEW_COUNT)
        except Exception as error:  # fields stored behind validation's back: the page still opens
            return _("Cannot be computed: %(reason)s") % {"reason": set_aside_reason(error)}
        if not fires:
            return _("None: the schedule has finished.")
        dst_note = " — " + _("daylight saving time changes before this fire")
        rows = format_html_join(
            "",
            "<li>{}{}{}{}</li>",
            (
                (
                    stamp(fire.at, fire.local.tzinfo),
                    _beside(stamp(fire.at), stamp(fire.at, fire.local.tzinfo)),
                    dst_note if fire.dst_change else "",
                    _calendar_note(fire),
                )
                for fire in fires
            ),
        )
        return format_html('<ul style="margin:0;padding-left:1.2em">{}</ul>', rows)


def _calendar_note(fire: PreviewFire) -> SafeString | str:
    """What the schedule's calendars make of the fire: excluded, or moved (and where to)."""
    if not fire.excluded:
        return ""
    if fire.moved_to is not None:
        return format_html(
            " — <strong>{}</strong> ({})",
            _("moved to %(when)s") % {"when": stamp(fire.moved_to, fire.local.tzinfo)},
            fire.reason,
        )
    return format_html(" — <strong>{}</strong> ({})", _("excluded"), fire.reason)


def _beside(yours: str, theirs: str) -> SafeString | str:
    """The operator's reading of a time beside the schedule's, where the two differ."""
    if yours == theirs:
        return ""
    return format_html(" <span class='quiet'>({})</span>", yours)


def _calendar_note_text(fire: PreviewFire) -> str:
    if not fire.excluded:
        return ""
    if fire.moved_to is not None:
        moved = _("moved to %(when)s") % {"when": stamp(fire.moved_to, fire.local.tzinfo)}
        return f"{moved} ({fire.reason})"
    return f"{_('excluded')} ({fire.reason})"


def _preview_refused(form: SchedulePreviewForm, errors: Mapping[str, Any]) -> JsonResponse:
    """The preview's errors by field, each message naming its field as the page labels it
    ("Cron expression: minute field: 61 is out of range 0–59.")."""
    named: dict[str, list[str]] = {}
    for field, messages in errors.items():
        texts = [m["message"] if isinstance(m, dict) else str(m) for m in messages]
        label = form.fields[field].label if field in form.fields else field
        named[field] = [f"{capfirst(label)}: {text}" if label else text for text in texts]
    return JsonResponse({"errors": named, "description": "", "fires": []})


def zone_suggestions_view(request: HttpRequest) -> JsonResponse:
    """The zone picker's list for what is typed (?q=): rules.zone.zone_suggestions, the
    ranking every zone check uses, each zone with its UTC offset now."""
    typed = request.GET.get("q", "")[:MAX_ZONE_NAME]
    now = timezone.now()
    return JsonResponse(
        {
            "zones": [
                {"name": name, "offset": offset_text(now.astimezone(ZoneInfo(name)))}
                for name in zone_suggestions(typed, limit=ZONE_SUGGESTIONS)
            ]
        }
    )
