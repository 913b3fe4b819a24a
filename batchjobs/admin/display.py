"""How statuses, durations, JSON and links look on admin pages."""

import json
from datetime import datetime
from typing import Any, Protocol

from django.contrib import admin
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

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
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def moment(value: datetime | None) -> SafeString | str:
    """A point in time as operators compare them: to the second, in the display zone, with how
    far it is from now beside it ("in 12 s", "3 min ago")."""
    if value is None:
        return "-"
    shown = timezone.localtime(value)
    return format_html(
        '<time datetime="{}">{}</time>', value.isoformat(), f"{shown:%Y-%m-%d %H:%M:%S %Z}"
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
            parts.append(f"{progress.done:,} of {about}{progress.total:,} items")
        else:
            parts.append(f"{progress.done:,} items")
    if progress.rate is not None:
        parts.append(f"{progress.rate:,.1f} items/s")
    if progress.eta_seconds is not None:
        parts.append(f"ETA {duration_text(progress.eta_seconds)}")
    elif progress.done is not None and progress.total is None:
        parts.append("total unknown")
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

    title = "set aside"
    parameter_name = "set_aside"

    def lookups(self, request, model_admin) -> list[tuple[str, str]]:
        return [("yes", "Set aside"), ("no", "Not set aside")]

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
        '<span title="{}" style="color:#c77700;font-weight:bold">&#9888; set aside</span>',
        row.set_aside_reason,
    )


def set_aside_text(row: SetAsideRow, *, what_to_do: str) -> SafeString | str:
    """The detail page's account of a set-aside row: when, the error, and what to do."""
    if row.set_aside_at is None:
        return "-"
    return format_html(
        '<div style="color:#c77700"><b>Set aside at {} UTC.</b> {}</div>{}',
        f"{row.set_aside_at:%Y-%m-%d %H:%M:%S}",
        what_to_do,
        text_pre(row.set_aside_reason),
    )
