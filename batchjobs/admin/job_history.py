"""A job's history on its page: runs per day by status (a stacked SVG bar chart in the
dashboard's style), run time p50/p95 and success rate over 7 and 30 days, and the latest
runs. The figures are batchjobs.selectors.job_history's."""

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from batchjobs.models import BatchJob
from batchjobs.selectors.job_history import HISTORY_DAYS, DayCounts, WindowStats, job_history

from .charts import STACK_ORDER, StackedBar, stacked_bars_svg
from .display import STATUS_COLOURS, duration_text, moment, status_badge

# Day labels every LABEL_EVERY_DAYS: they fit a 390 px screen.
LABEL_EVERY_DAYS = 5


def runs_per_day_svg(days: list[DayCounts]) -> SafeString:
    """Stacked bars: the job's executions created per day, by status, the oldest day first."""
    bars = [
        StackedBar(
            counts=day.counts,
            title=formats.date_format(day.day, "SHORT_DATE_FORMAT"),
            # Counted back from today, so that today is always labelled.
            label=f"{day.day:%m-%d}" if (len(days) - 1 - index) % LABEL_EVERY_DAYS == 0 else None,
        )
        for index, day in enumerate(days)
    ]
    label = _("Executions of this job per day over the last %(days)d days, by status") % {
        "days": len(days)
    }
    return stacked_bars_svg(bars, height=200, label=label)


def _window_row(window: WindowStats) -> dict[str, str]:
    rate = window.success_rate
    return {
        "label": ngettext("Last %(days)d day", "Last %(days)d days", window.days)
        % {"days": window.days},
        "runs": formats.number_format(window.runs, force_grouping=True),
        "success_rate": "-" if rate is None else f"{rate:.1%}",
        "success_title": _("%(completed)s of %(ended)s ended runs completed")
        % {"completed": window.completed, "ended": window.ended},
        "p50": duration_text(window.p50),
        "p95": duration_text(window.p95),
    }


def job_history_section(*, job: BatchJob) -> SafeString:
    """The job page's history section (its figures read in three queries)."""
    history = job_history(job_id=job.pk)
    executions = reverse("admin:batchjobs_batchlog_changelist")
    context = {
        "chart": runs_per_day_svg(history.days),
        "legend": [
            (status, STATUS_COLOURS[status])
            for status in STACK_ORDER
            if any(day.counts.get(status) for day in history.days)
        ],
        "days": HISTORY_DAYS,
        "windows": [_window_row(window) for window in history.windows],
        "sampled": any(window.sampled for window in history.windows),
        "recent": [
            {
                "id": run.pk,
                "url": reverse("admin:batchjobs_batchlog_change", args=[run.pk]),
                "status": status_badge(run.status),
                "trigger": run.get_trigger_display(),
                "created": moment(run.created_at),
                "duration": duration_text(run.duration_seconds),
                "attempts": f"{run.attempts}/{run.max_attempts}",
                "error": (getattr(run, "error_head", "") or "").split("\n", 1)[0],
            }
            for run in history.recent
        ],
        "all_url": f"{executions}?job__id__exact={job.pk}",
    }
    return SafeString(render_to_string("admin/batchjobs/batchjob/history.html", context))
