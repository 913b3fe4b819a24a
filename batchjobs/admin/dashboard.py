"""The dashboard, the console's home (/admin/; its first address, under the executions, serves
the same): the scheduler's status card, health of beat and workers, executions by status, what
runs now (with progress) and what is due next, recent failures, rows set aside, and two charts.
The page fetches its live part again every REFRESH_SECONDS without reloading; ?refresh=N
changes the period (a wall display, a test)."""

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

from .charts import durations_chart, executions_per_hour_svg
from .display import (
    STATUS_COLOURS,
    duration_text,
    moment,
    progress_bars,
    relative_text,
    status_badge,
)

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


def status_card(data: Dashboard) -> dict[str, Any]:
    """GET /api/scheduler's card: is the scheduler running, the totals (of executions: the
    last 24 hours'), the next job to fire."""
    status = data.status
    due = status.next_due
    return {
        "running": status.beat_alive,
        "known": status.broker_reachable,
        "totals": [
            (_("Jobs"), status.total_jobs),
            (_("Waiting"), status.waiting),
            (_("Running"), status.running),
            (_("Completed, 24 h"), status.counts[ExecutionStatus.COMPLETED]),
            (_("Failed, 24 h"), status.counts[ExecutionStatus.FAILED]),
        ],
        "next_due": due,
        "next_due_moment": moment(due.at) if due else "",
        "next_due_late": bool(due and due.at <= data.now),
    }


def live_context(data: Dashboard) -> dict[str, Any]:
    """What the live part shows, ready for the template."""
    return {
        "data": data,
        "card": status_card(data),
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
                # "in 19 s", not timeuntil's "0 minutes"
                "until": relative_text(s.next_fire_at, now=data.now) if s.next_fire_at else "-",
                "late": duration_text(
                    (data.now - s.next_fire_at).total_seconds() if s.next_fire_at else None
                ),
            }
            for s in data.upcoming
        ],
        "set_aside": data.set_aside,
        "set_aside_schedules_url": set_aside_list_url(BatchSchedule),
        "set_aside_executions_url": set_aside_list_url(BatchLog),
        "failures": [
            {
                "execution": e,
                "summary": error_summary(e.error),
                "ended": relative_text(e.finished_at, now=data.now) if e.finished_at else "-",
            }
            for e in data.failures
        ],
        "per_hour_svg": executions_per_hour_svg(data.per_hour),
        "durations_chart": durations_chart(data.durations) if data.durations else "",
        "legend": [(status_badge(status), status) for status in STATUS_COLOURS],
        "as_of": moment(data.now),
    }


def home_context(request: HttpRequest, site: admin.AdminSite) -> dict[str, Any]:
    """The home's context: the dashboard for whoever may view executions (it shows them);
    for anyone else the home is the menu alone."""
    if not site.get_model_admin(BatchLog).has_view_permission(request):
        return {"dashboard_allowed": False}
    return {
        "dashboard_allowed": True,
        "refresh_seconds": refresh_seconds(request),
        "live_url": reverse("admin:batchjobs_dashboard_live"),
        **live_context(dashboard()),
    }


class DashboardViews:
    """The dashboard's first address and its live fragment, served under the executions admin
    (whose view permission they need: they show executions). admin_view() makes both
    uncacheable."""

    def __init__(self, model_admin: admin.ModelAdmin):
        self.model_admin = model_admin

    def _check(self, request: HttpRequest) -> None:
        if not self.model_admin.has_view_permission(request):
            raise PermissionDenied

    def page(self, request: HttpRequest) -> HttpResponse:
        """The home, as before it was the home (old links, ?refresh=N included)."""
        self._check(request)
        return self.model_admin.admin_site.index(request)

    def live(self, request: HttpRequest) -> HttpResponse:
        self._check(request)
        return TemplateResponse(
            request, "admin/batchjobs/dashboard_live.html", live_context(dashboard())
        )
