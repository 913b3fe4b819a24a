"""Exclusion calendars: the days the schedules attached to them do not fire. Saves and deletes
go through the calendar services (validated, audited, beat woken); the page lists the days the
calendar excludes over the next twelve months, with why."""

from datetime import date, timedelta
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import AdminTextareaWidget
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from batchjobs.errors import InvalidInput
from batchjobs.models import Calendar
from batchjobs.selectors.calendars import calendar_list
from batchjobs.services.calendars import (
    calendar_days,
    calendar_delete,
    calendar_normalise,
    calendar_save,
    calendar_validate,
)

from .forms import ServiceRulesForm

DAYS_AHEAD = 365


def _year(text: str | None, *, default: int) -> tuple[int, str]:
    """The year asked for, or the default with why the one asked for cannot be shown."""
    if text is None:
        return default, ""
    if text.isdigit() and 1 <= int(text) <= 9999:
        return int(text), ""
    return default, _("The year must be a number from 1 to 9999.")


class ExcludedDatesField(forms.Field):
    """One date or range a line, as the calendar stores them in a list."""

    widget = AdminTextareaWidget(attrs={"rows": 6})

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(map(str, value)) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:
        text = value if isinstance(value, str) else ""
        return [line.strip() for line in text.splitlines() if line.strip()]


class CalendarAdminForm(ServiceRulesForm):
    excluded_dates = ExcludedDatesField(
        required=False,
        label=gettext_lazy("Excluded dates"),
        help_text=gettext_lazy(
            'One a line: a date "2027-02-06" or an inclusive range "2027-08-02..2027-08-06".'
        ),
    )

    class Meta:
        model = Calendar
        fields = ("name", "description", "country", "subdivision", "business_days_only",
                  "excluded_dates")  # fmt: skip

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in ("country", "subdivision"):
            if isinstance(cleaned.get(name), str):
                setattr(self.instance, name, cleaned[name])
        # "kr" is KR: the form shows and saves what the API would.
        calendar_normalise(self.instance)
        cleaned["country"], cleaned["subdivision"] = (
            self.instance.country,
            self.instance.subdivision,
        )
        return cleaned

    def service_validate(self) -> None:
        calendar_validate(calendar=self.instance)


@admin.register(Calendar)
class CalendarAdmin(admin.ModelAdmin):
    form = CalendarAdminForm
    list_display = ("name", "country", "subdivision", "business_days_only", "schedule_count")
    list_filter = ("country", "business_days_only")
    search_fields = ("name", "description", "country")
    readonly_fields = ("days_ahead",)
    fieldsets = [
        (None, {"fields": ("name", "description")}),
        (
            gettext_lazy("Excluded days"),
            {"fields": ("country", "subdivision", "business_days_only", "excluded_dates")},
        ),
        (gettext_lazy("The next twelve months"), {"fields": ("days_ahead",)}),
    ]

    def get_urls(self):
        days = path(
            "<path:object_id>/days/",
            self.admin_site.admin_view(self.days_view),
            name="batchjobs_calendar_days",
        )
        return [days, *super().get_urls()]

    def days_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The days of one year (?year=, this one by default) the calendar excludes, with why."""
        calendar = self.get_object(request, unquote(object_id))
        if calendar is None or not self.has_view_permission(request, calendar):
            raise PermissionDenied
        year, error = _year(request.GET.get("year"), default=timezone.localdate().year)
        try:
            days = calendar_days(calendar=calendar, start=date(year, 1, 1), end=date(year, 12, 31))
        except InvalidInput as problem:  # stored behind validation's back
            days, error = [], _("Cannot be computed: %(reason)s") % {"reason": str(problem)}
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Days %(name)s excludes in %(year)s")
            % {"name": calendar.name, "year": year},
            "original": calendar,
            "year": year,
            "previous_year": year - 1 if year > 1 else None,
            "next_year": year + 1 if year < 9999 else None,
            "days": days,
            "error": error,
        }
        return TemplateResponse(request, "admin/batchjobs/calendar/days.html", context)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Calendar]:
        return calendar_list()

    def get_fieldsets(self, request: HttpRequest, obj: Calendar | None = None):
        fieldsets = super().get_fieldsets(request, obj)
        return fieldsets if obj is not None else fieldsets[:2]  # nothing saved to list yet

    def save_model(self, request: HttpRequest, obj: Calendar, form, change: bool) -> None:
        calendar_save(calendar=obj, user=request.user)

    def delete_model(self, request: HttpRequest, obj: Calendar) -> None:
        calendar_delete(calendar=obj, user=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Calendar]) -> None:
        for calendar in queryset:
            calendar_delete(calendar=calendar, user=request.user)

    @admin.display(description=gettext_lazy("schedules"), ordering="schedule_count")
    def schedule_count(self, calendar: Calendar) -> int:
        return vars(calendar).get("schedule_count", 0)  # get_queryset's annotation

    @admin.display(description=gettext_lazy("excluded days"))
    def days_ahead(self, calendar: Calendar) -> SafeString | str:
        """Every day from today the calendar excludes, with why (a holiday's name, a weekend
        day, a custom date)."""
        if calendar.pk is None:
            return "-"
        today = timezone.localdate()
        try:
            days = calendar_days(
                calendar=calendar, start=today, end=today + timedelta(days=DAYS_AHEAD)
            )
        except InvalidInput as error:  # stored behind validation's back: the page still opens
            return _("Cannot be computed: %(reason)s") % {"reason": str(error)}
        link = format_html(
            '<p><a href="{}">{}</a></p>',
            reverse("admin:batchjobs_calendar_days", args=[calendar.pk]),
            _("Every day it excludes, year by year"),
        )
        if not days:
            return format_html("{}{}", _("None."), link)
        rows = format_html_join(
            "",
            "<li>{} — {}</li>",
            ((f"{day.isoformat()} ({date_format(day, 'D')})", why) for day, why in days),
        )
        return format_html('{}<ul style="margin:0;padding-left:1.2em">{}</ul>', link, rows)
