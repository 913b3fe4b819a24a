"""How statuses, durations, points in time, JSON and links look on admin pages."""

import json
from datetime import datetime, tzinfo
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib import admin
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from batchjobs.models import ExecutionStatus
from batchjobs.selectors.progress import Progress

STATUS_COLOURS: dict[str, str] = {  # ExecutionStatus members are str
    ExecutionStatus.QUEUED: "#5b7083",
    ExecutionStatus.STARTED: "#1f6fd1",
    ExecutionStatus.STOPPING: "#c77700",
    ExecutionStatus.STOPPED: "#7a7a7a",
    ExecutionStatus.COMPLETED: "#23803a",
    ExecutionStatus.FAILED: "#c62828",
    ExecutionStatus.ABANDONED: "#7b1f1f",
    ExecutionStatus.SKIPPED: "#9e9e9e",
}
BADGE_STYLE = (
    "display:inline-block;padding:1px 8px;border-radius:9px;color:#fff;"
    "font-size:11px;font-weight:bold;letter-spacing:.03em;background:{}"
)
PRE_STYLE = "white-space:pre-wrap;max-height:24em;overflow:auto;margin:0"
PROGRESS_STYLE = "width:100%;max-width:360px;height:12px"


def status_badge(status: str) -> SafeString:
    colour = STATUS_COLOURS.get(status, "#444")
    return format_html('<span style="{}">{}</span>', BADGE_STYLE.format(colour), status)


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return _("%(seconds)s s") % {"seconds": f"{seconds:.1f}"}
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return _("%(minutes)d min %(seconds)d s") % {"minutes": minutes, "seconds": seconds}
    hours, minutes = divmod(minutes, 60)
    return _("%(hours)d h %(minutes)d min") % {"hours": hours, "minutes": minutes}


def stamp(value: datetime, zone: tzinfo | None = None) -> str:
    """E.g. "2026-12-03 23:50:00 KST": to the second, in `zone` (default: the operator's)."""
    return f"{timezone.localtime(value, zone):%Y-%m-%d %H:%M:%S %Z}"


def relative_text(value: datetime, *, now: datetime, zone: tzinfo | None = None) -> str:
    """How far `value` is from `now`: "in 12 s", "3 min ago", "in 2 h 5 min", and from a day
    on in calendar days of `zone` (default: the operator's): "yesterday", "in 3 days"."""
    seconds = round((value - now).total_seconds())
    ahead, distance = seconds > 0, abs(seconds)
    if distance == 0:
        return _("now")
    if distance < 60:
        if ahead:
            text = ngettext("in %(count)d s", "in %(count)d s", distance)
        else:
            text = ngettext("%(count)d s ago", "%(count)d s ago", distance)
        return text % {"count": distance}
    minutes = distance // 60
    if minutes < 60:
        if ahead:
            text = ngettext("in %(count)d min", "in %(count)d min", minutes)
        else:
            text = ngettext("%(count)d min ago", "%(count)d min ago", minutes)
        return text % {"count": minutes}
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        if minutes == 0:
            if ahead:
                text = ngettext("in %(count)d h", "in %(count)d h", hours)
            else:
                text = ngettext("%(count)d h ago", "%(count)d h ago", hours)
            return text % {"count": hours}
        if ahead:
            text = ngettext(
                "in %(hours)d h %(minutes)d min", "in %(hours)d h %(minutes)d min", hours
            )
        else:
            text = ngettext(
                "%(hours)d h %(minutes)d min ago", "%(hours)d h %(minutes)d min ago", hours
            )
        return text % {"hours": hours, "minutes": minutes}
    # A day or more: the dates on the operator's calendar, as people say it. A fall-back day
    # lasts 25 hours, so 24 hours on can still be the same date: that is a day too.
    days = max(1, abs((timezone.localdate(value, zone) - timezone.localdate(now, zone)).days))
    if days == 1:
        return _("tomorrow") if ahead else _("yesterday")
    if ahead:
        text = ngettext("in %(count)d day", "in %(count)d days", days)
    else:
        text = ngettext("%(count)d day ago", "%(count)d days ago", days)
    return text % {"count": days}


def moment(value: datetime | None, *, zone: tzinfo | None = None) -> SafeString | str:
    """A point in time as operators compare them: to the second, in `zone` (default: the
    operator's display zone) with its abbreviation, and how far it is from now beside it
    ("in 12 s", "3 min ago"). Cheap enough for every row of a list."""
    if value is None:
        return "-"
    return format_html(
        '<time datetime="{}">{}</time> <span class="bj-relative">({})</span>',
        value.isoformat(),
        stamp(value, zone),
        relative_text(value, now=timezone.now(), zone=zone),
    )


def moment_in_zone(value: datetime | None, zone_name: str) -> SafeString | str:
    """A schedule's point in time: in the schedule's own zone, and under it in the operator's
    where that reads differently (another offset, or another name for it)."""
    if value is None:
        return "-"
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):  # stored behind validation's back
        return moment(value)
    theirs = moment(value, zone=zone)
    yours = stamp(value)
    if yours == stamp(value, zone):
        return theirs
    return format_html(
        '{}<br><span class="quiet">{}</span>',
        theirs,
        _("%(time)s in your time zone") % {"time": yours},
    )


def text_pre(text: str) -> SafeString | str:
    """Tracebacks and response bodies keep their line breaks and indentation."""
    if not text:
        return "-"
    return format_html('<pre style="{}">{}</pre>', PRE_STYLE, text)


def json_pre(value: Any) -> SafeString | str:
    if value in (None, {}, []):
        return "-"
    return text_pre(json.dumps(value, indent=2, ensure_ascii=False, cls=DjangoJSONEncoder))


def change_link(model: type[models.Model], pk: Any, text: Any) -> SafeString:
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk])
    return format_html('<a href="{}">{}</a>', url, text)


def progress_text(progress: Progress) -> str:
    """E.g. "1,200 of ≈5,000 items · 240.0 items/s · ETA 15.8 s" (≈: the last run's size)."""
    parts = []
    if progress.done is not None:
        if progress.total is not None:
            about = "≈" if progress.total_estimated else ""
            parts.append(
                _("%(done)s of %(total)s items")
                % {"done": f"{progress.done:,}", "total": f"{about}{progress.total:,}"}
            )
        else:
            parts.append(_("%(done)s items") % {"done": f"{progress.done:,}"})
    if progress.rate is not None:
        parts.append(_("%(rate)s items/s") % {"rate": f"{progress.rate:,.1f}"})
    if progress.eta_seconds is not None:
        parts.append(_("ETA %(duration)s") % {"duration": duration_text(progress.eta_seconds)})
    elif progress.done is not None and progress.total is None:
        parts.append(_("total unknown"))
    return " · ".join(parts)


def progress_bar(progress: Progress) -> SafeString:
    """A native <progress>: a bar when the total is known, an indeterminate one otherwise."""
    label = f"{progress.label}: " if progress.label else ""
    if progress.percent is not None:
        bar = format_html(
            '<progress max="100" value="{}" style="{}">{}%</progress>',
            f"{progress.percent:.1f}",
            PROGRESS_STYLE,
            f"{progress.percent:.0f}",
        )
    else:
        bar = format_html('<progress style="{}"></progress>', PROGRESS_STYLE)
    return format_html(
        '<div class="bj-progress">{}<div class="bj-progress-text">{}{}</div></div>',
        bar,
        label,
        progress_text(progress),
    )


def progress_bars(entries: list[Progress]) -> SafeString | str:
    if not entries:
        return "-"
    return format_html_join("", "{}", ((progress_bar(entry),) for entry in entries))


class SetAsideFilter(admin.SimpleListFilter):
    """Rows beat or housekeeping set aside because processing them raised (the dashboard links
    here with ?set_aside=yes)."""

    title = gettext_lazy("set aside")
    parameter_name = "set_aside"

    def lookups(self, request, model_admin) -> list[tuple[str, str]]:
        return [("yes", _("Set aside")), ("no", _("Not set aside"))]

    def queryset(self, request, queryset: models.QuerySet) -> models.QuerySet:
        if self.value() in ("yes", "no"):
            return queryset.filter(set_aside_at__isnull=self.value() == "no")
        return queryset


class SetAsideRow(Protocol):
    """A row beat or housekeeping can set aside: a BatchSchedule or a BatchLog."""

    @property
    def set_aside_at(self) -> datetime | None: ...
    @property
    def set_aside_reason(self) -> str: ...


def set_aside_marker(row: SetAsideRow) -> SafeString | str:
    """A warning sign on a list row that is set aside; its reason shows on hover."""
    if row.set_aside_at is None:
        return ""
    return format_html(
        '<span title="{}" style="color:#c77700;font-weight:bold">&#9888; {}</span>',
        row.set_aside_reason,
        _("set aside"),
    )


def set_aside_text(row: SetAsideRow, *, what_to_do: str) -> SafeString | str:
    """The detail page's account of a set-aside row: when, the error, and what to do."""
    if row.set_aside_at is None:
        return "-"
    return format_html(
        '<div style="color:#c77700"><b>{}</b> {}</div>{}',
        _("Set aside at %(time)s.") % {"time": stamp(row.set_aside_at)},
        what_to_do,
        text_pre(row.set_aside_reason),
    )
