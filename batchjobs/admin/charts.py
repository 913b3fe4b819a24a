"""Server-rendered charts for the dashboard: no script, no CDN, readable without colour (every
bar has a <title> tooltip with its figures). Hours are labelled in the display zone.

They scale to their box: the hourly chart is an SVG with a viewBox whose text takes its size
from console.css (larger in viewBox units on a narrow screen, where the chart is drawn
smaller, so that it stays readable); the run-time chart is rows of HTML text, each with a small
SVG bar, so that its names and figures wrap as text does."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from batchjobs.models import ExecutionStatus
from batchjobs.selectors.dashboard import HourCounts, JobDurations

from .display import STATUS_COLOURS, duration_text

# Bottom to top: outcomes first, then what is still under way.
STACK_ORDER = (
    ExecutionStatus.COMPLETED,
    ExecutionStatus.FAILED,
    ExecutionStatus.STOPPED,
    ExecutionStatus.ABANDONED,
    ExecutionStatus.SKIPPED,
    ExecutionStatus.STOPPING,
    ExecutionStatus.STARTED,
    ExecutionStatus.QUEUED,
)
# Hour labels every LABEL_EVERY_HOURS: 8 labels fit a 390 px screen at console.css's size.
LABEL_EVERY_HOURS = 3


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten that is at least `value` (at least 1)."""
    if value <= 1:
        return 1
    magnitude = 1
    while magnitude * 10 < value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def _svg(width: int, height: int, label: str, body: Iterable[SafeString]) -> SafeString:
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" width="100%" '
        'role="img" aria-label="{}" class="bj-svg-chart" style="max-width:{}px">{}</svg>',
        width,
        height,
        label,
        width,
        format_html_join("", "{}", ((part,) for part in body)),
    )


@dataclass(frozen=True)
class StackedBar:
    """One bar of stacked_bars_svg: its counts by status, the name its tooltips give it and
    the label under it (None: not labelled)."""

    counts: Mapping[str, int]
    title: str
    label: str | None = None


def stacked_bars_svg(bars: Sequence[StackedBar], *, height: int, label: str) -> SafeString:
    """Stacked bars by status (STACK_ORDER bottom to top) on one scale, with rules at 0, half
    and the top. The last bar's label ends at the plot's edge, so that it is not cut off."""
    width, left, bottom, top = 720, 48, 36, 12
    plot_width, plot_height = width - left - 8, height - bottom - top
    ceiling = _nice_ceiling(max((sum(bar.counts.values()) for bar in bars), default=0))
    slot = plot_width / max(len(bars), 1)
    parts: list[SafeString] = []
    for fraction in (0, 0.5, 1):
        y = round(top + plot_height * (1 - fraction), 1)
        parts.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#ddd"/>'
                '<text x="{}" y="{}" text-anchor="end">{}</text>',
                left,
                width - 8,
                y,
                y,
                left - 6,
                round(y + 4, 1),
                f"{ceiling * fraction:g}",
            )
        )
    for index, bar in enumerate(bars):
        x = left + index * slot + 1
        base: float = top + plot_height  # each status stacked lowers it by its height
        for status in STACK_ORDER:
            count = bar.counts.get(status, 0)
            if not count:
                continue
            bar_height = plot_height * count / ceiling
            base -= bar_height
            parts.append(
                format_html(
                    '<rect class="bar" data-status="{}" x="{}" y="{}" width="{}" height="{}" '
                    'fill="{}"><title>{}: {} {}</title></rect>',
                    status,
                    round(x, 1),
                    round(base, 1),
                    round(slot - 2, 1),
                    round(bar_height, 1),
                    STATUS_COLOURS[status],
                    bar.title,
                    count,
                    status,
                )
            )
        if bar.label is not None:
            last = index == len(bars) - 1
            parts.append(
                format_html(
                    '<text x="{}" y="{}" text-anchor="{}">{}</text>',
                    round(x + slot - 2 if last else x + slot / 2, 1),
                    height - 8,
                    "end" if last else "middle",
                    bar.label,
                )
            )
    return _svg(width, height, label, parts)


def executions_per_hour_svg(hours: list[HourCounts]) -> SafeString:
    """Stacked bars: executions created per hour, by status."""
    bars = []
    for index, hour in enumerate(hours):
        shown = timezone.localtime(hour.hour)
        labelled = index % LABEL_EVERY_HOURS == 0
        bars.append(
            StackedBar(
                counts=hour.counts,
                title=f"{shown:%H:%M %Z}",
                label=f"{shown:%H:%M}" if labelled else None,
            )
        )
    label = _("Executions per hour over the last 24 hours, by status")
    return stacked_bars_svg(bars, height=230, label=label)


def durations_chart(durations: list[JobDurations]) -> SafeString:
    """Per job, p95 (light) with p50 (dark) over it, on one linear scale: a row each, the
    name and figures as text and the bars as a small SVG stretched to the row's width."""
    longest = max((d.p95 for d in durations), default=0) or 1
    rows = []
    for item in durations:
        p95 = round(max(0.5, 100 * item.p95 / longest), 2)
        p50 = round(max(0.5, 100 * item.p50 / longest), 2)
        p50_text, p95_text = duration_text(item.p50), duration_text(item.p95)
        rows.append(
            format_html(
                '<div class="bj-duration-row"><span class="bj-duration-name" title="{}">{}</span>'
                '<svg class="bj-duration-bar" viewBox="0 0 100 14" preserveAspectRatio="none" '
                'aria-hidden="true">'
                '<rect class="p95" x="0" y="0" width="{}" height="14" fill="#9ec5f0">'
                "<title>{}: p95 {}</title></rect>"
                '<rect class="p50" x="0" y="0" width="{}" height="14" fill="#1f6fd1">'
                "<title>{}: p50 {}</title></rect></svg>"
                '<span class="bj-duration-figures">{}</span></div>',
                item.job_name,
                item.job_name,
                p95,
                item.job_name,
                p95_text,
                p50,
                item.job_name,
                p50_text,
                f"p50 {p50_text} · p95 {p95_text} · n={item.samples}",
            )
        )
    return format_html(
        '<div class="bj-durations">{}</div>', format_html_join("", "{}", ((row,) for row in rows))
    )
