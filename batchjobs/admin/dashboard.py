"""The dashboard: scheduler health, executions by status, what runs now (with progress) and
what is due next, recent failures, rows set aside, and two charts. The page fetches its live
part again every REFRESH_SECONDS without reloading; ?refresh=N changes the period (a wall
display, a test)."""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from batchjobs.models import BatchLog, BatchSchedule, ExecutionStatus
from batchjobs.models.execution import ACTIVE_STATUSES, RUNNING_STATUSES
from batchjobs.selectors.dashboard import Dashboard, dashboard
from batchjobs.selectors.executions import error_summary

from .charts import durations_svg, executions_per_hour_svg
from .display import STATUS_COLOURS, duration_text, moment, progress_bars, status_badge

REFRESH_SECONDS = 30
REFRESH_RANGE = (2, 3600)
# Shown first, as "now"; the others count what ended in the last 24 hours.
NOW_ORDER = (ExecutionStatus.STARTED, ExecutionStatus.STOPPING, ExecutionStatus.QUEUED)


def refresh_seconds(request: HttpRequest) -> int:
    try:
        wanted = int(request.GET.get("refresh", REFRESH_SECONDS))
    except ValueError:
        return REFRESH_SECONDS
    return min(max(wanted, REFRESH_RANGE[0]), REFRESH_RANGE[1])


def local_time(instant: datetime | None, zone: str) -> str:
    """Formatted here: the template's date filter would turn it back into UTC. A zone stored
    behind validation's back is named, not a 500 (beat sets such a schedule aside)."""
    if instant is None:  # no fire ahead (upcoming_fires lists only schedules with one)
        return "-"
    try:
        return f"{instant.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M:%S %Z}"
    except (ZoneInfoNotFoundError, ValueError):
        return _("unknown time zone %(zone)r") % {"zone": zone}


def set_aside_list_url(model: type[Model]) -> str:
    opts = model._meta
    return f"{reverse(f'admin:{opts.app_label}_{opts.model_name}_changelist')}?set_aside=yes"


def live_context(data: Dashboard) -> dict[str, Any]:
    """What the live part shows, ready for the template."""
    return {
        "data": data,
        "counts_now": [(status_badge(s), data.counts[s]) for s in NOW_ORDER],
        "counts_recent": [
            (status_badge(s), data.counts[s])
            for s in ExecutionStatus.values
            if s not in ACTIVE_STATUSES
        ],
        "running": [
            {
                "execution": row.execution,
                "badge": status_badge(row.execution.status),
                "progress": progress_bars(row.progress),
                "running_for": duration_text(
                    (data.now - row.execution.started_at).total_seconds()
                    if row.execution.started_at
                    else None
                ),
            }
            for row in data.running
        ],
        "running_count": sum(data.counts[s] for s in RUNNING_STATUSES),
        "beat_seen": duration_text(
            max(0.0, (data.now - data.health.beats[0].last_seen).total_seconds())
            if data.health.beats
            else None
        ),
        "upcoming": [
            {
                "schedule": s,
                "due": moment(s.next_fire_at),
                "local": local_time(s.next_fire_at, s.timezone),
            }
            for s in data.upcoming
        ],
        "set_aside": data.set_aside,
        "set_aside_schedules_url": set_aside_list_url(BatchSchedule),
        "set_aside_executions_url": set_aside_list_url(BatchLog),
        "failures": [{"execution": e, "summary": error_summary(e.error)} for e in data.failures],
        "per_hour_svg": executions_per_hour_svg(data.per_hour),
        "durations_svg": durations_svg(data.durations) if data.durations else "",
        "legend": [(status_badge(status), status) for status in STATUS_COLOURS],
        "as_of": moment(data.now),
    }


class DashboardViews:
    """The page and its live fragment, served under the executions admin (whose view
    permission they need: they show executions). admin_view() makes both uncacheable."""

    def __init__(self, model_admin: admin.ModelAdmin):
        self.model_admin = model_admin

    def _check(self, request: HttpRequest) -> None:
        if not self.model_admin.has_view_permission(request):
            raise PermissionDenied

    def page(self, request: HttpRequest) -> HttpResponse:
        self._check(request)
        every = refresh_seconds(request)
        context = {
            **self.model_admin.admin_site.each_context(request),
            "title": _("Dashboard"),
            "opts": BatchLog._meta,
            "refresh_seconds": every,
            "live_url": reverse("admin:batchjobs_dashboard_live"),
            **live_context(dashboard()),
        }
        return TemplateResponse(request, "admin/batchjobs/dashboard.html", context)

    def live(self, request: HttpRequest) -> HttpResponse:
        self._check(request)
        return TemplateResponse(
            request, "admin/batchjobs/dashboard_live.html", live_context(dashboard())
        )
