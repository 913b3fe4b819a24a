"""The upcoming runs page (/admin/batchjobs/upcoming/, in the menu after Executions): every fire
of the next 24 hours or 7 days across jobs, a strip per job showing when each runs, then the
fires by day and hour, in the operator's zone; ?window=24h|7d, ?tag=<name>."""

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from batchjobs.models import BatchSchedule
from batchjobs.selectors.timeline import (
    DEFAULT_WINDOW,
    FIRES_IN_ALL,
    FIRES_PER_SCHEDULE,
    SCHEDULES_LIMIT,
    WINDOWS,
    JobFires,
    UpcomingRuns,
    by_day_and_hour,
    tag_exists,
    tag_names,
    upcoming_runs,
)

# Where a strip is ticked: every 6 hours over a day, every day over a week.
TICK_EVERY = {"24h": timedelta(hours=6), "7d": timedelta(days=1)}


def _percent(instant: datetime, runs: UpcomingRuns) -> str:
    share = (instant - runs.start) / (runs.end - runs.start)
    return f"{min(max(share, 0.0), 1.0) * 100:.2f}%"


def _ticks(runs: UpcomingRuns, every: timedelta) -> list[dict[str, str]]:
    """Local midnights (a week) or 6-hour marks (a day) inside the window, as strip positions."""
    local = timezone.localtime(runs.start)
    if every >= timedelta(days=1):
        mark = local.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        mark = local.replace(hour=local.hour - local.hour % 6, minute=0, second=0, microsecond=0)
    ticks = []
    while mark <= runs.end:
        # Wall-clock steps (a DST day has 23 or 25 hours): the next mark is made in local time.
        mark = timezone.make_aware(mark.replace(tzinfo=None) + every)
        if runs.start < mark <= runs.end:
            ticks.append({"left": _percent(mark, runs), "label": f"{mark:%a %H:%M}"})
    return ticks


def _strip(job: JobFires, runs: UpcomingRuns) -> dict[str, Any]:
    return {
        "job": job,
        "marks": [
            {
                "left": _percent(fire.at, runs),
                "excluded": fire.excluded,
                "title": (
                    f"{timezone.localtime(fire.at):%Y-%m-%d %H:%M:%S %Z}"
                    + (f" — {fire.reason}" if fire.excluded else "")
                ),
            }
            for fire in job.fires
        ],
        # A capped job's strip shades what follows its last listed fire: more fires, not shown.
        "more_from": _percent(job.fires[-1].at, runs) if job.capped else "",
    }


def _link(window: str, tag: str | None) -> str:
    query = {"window": window, **({"tag": tag} if tag else {})}
    return f"?{urlencode(query)}"


def upcoming_runs_view(request: HttpRequest) -> HttpResponse:
    site = admin.site
    if not site.get_model_admin(BatchSchedule).has_view_permission(request):
        raise PermissionDenied
    window = request.GET.get("window", DEFAULT_WINDOW)
    errors = []
    if window not in WINDOWS:
        errors.append(
            _("window: %(given)r is not one of %(choices)s; showing %(default)s.")
            % {"given": window, "choices": ", ".join(WINDOWS), "default": DEFAULT_WINDOW}
        )
        window = DEFAULT_WINDOW
    tag = request.GET.get("tag", "").strip() or None
    if tag is not None and not tag_exists(tag):
        errors.append(_("tag: no tag is named %(tag)r.") % {"tag": tag})
    runs = upcoming_runs(window=WINDOWS[window], tag=tag)
    zone = timezone.get_current_timezone()
    context = {
        **site.each_context(request),
        "title": _("Upcoming runs"),
        "errors": errors,
        "runs": runs,
        "window": window,
        "tag": tag,
        "window_links": [
            (key, _("Next 24 hours") if key == "24h" else _("Next 7 days"), _link(key, tag))
            for key in WINDOWS
        ],
        "tag_links": [(name, _link(window, name)) for name in tag_names()],
        "all_tags_link": _link(window, None),
        "zone": zone,
        "start_local": f"{timezone.localtime(runs.start):%Y-%m-%d %H:%M %Z}",
        "end_local": f"{timezone.localtime(runs.end):%Y-%m-%d %H:%M %Z}",
        "strips": [_strip(job, runs) for job in runs.jobs],
        "ticks": _ticks(runs, TICK_EVERY[window]),
        "days": by_day_and_hour(runs.fires, zone),
        "limits": {
            "per_schedule": FIRES_PER_SCHEDULE,
            "in_all": FIRES_IN_ALL,
            "schedules": SCHEDULES_LIMIT,
        },
    }
    return TemplateResponse(request, "admin/batchjobs/upcoming_runs.html", context)
