"""The execution's page, top first: what happened (status, the error in one line, attempt N of
M, the next retry, duration, what triggered it), then each attempt with its log lines, request
and response, then the items the batch steps skipped. The live endpoint sends the parts that
change while the execution runs, for static/batchjobs/execution.js."""

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from batchjobs.execution.limits import held_reason_shown
from batchjobs.models import (
    AttemptLogLine,
    Backfill,
    BatchJob,
    BatchLog,
    BatchSchedule,
    ExecutionStatus,
    StepExecution,
    Trigger,
)
from batchjobs.models.execution import ACTIVE_STATUSES, RUNNING_STATUSES
from batchjobs.selectors.executions import AttemptRecord, error_summary, execution_steps
from batchjobs.selectors.progress import execution_progress

from .display import (
    change_link,
    duration_text,
    moment,
    progress_bars,
    relative_text,
    set_aside_marker,
    stamp,
    status_badge,
)

# Below this, durations show milliseconds: a retry's backoff and a quick failure must differ.
PRECISE_BELOW_SECONDS = 10


def precise_duration(seconds: float | None) -> str:
    """E.g. "0.004 s", "2.350 s", then as duration_text(): "12.3 s", "1 min 15 s"."""
    if seconds is None or seconds >= PRECISE_BELOW_SECONDS:
        return duration_text(seconds)
    return _("%(seconds)s s") % {"seconds": f"{max(seconds, 0.0):.3f}"}


def time_of_day(value: datetime) -> str:
    """E.g. "02:26:14.031": to the millisecond, in the operator's zone."""
    local = timezone.localtime(value)
    return f"{local:%H:%M:%S}.{local.microsecond // 1000:03d}"


def clock_time(value: datetime | None) -> SafeString | str:
    """A time of day to the millisecond in the operator's zone, the full date on hover."""
    if value is None:
        return "-"
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        value.isoformat(),
        stamp(value),
        time_of_day(value),
    )


@dataclass(frozen=True)
class Fact:
    label: str
    value: SafeString | str
    name: str  # a class for tests and the stylesheet


def trigger_text(execution: BatchLog) -> SafeString | str:
    """What started the execution, as one sentence with its links."""
    trigger = execution.trigger
    if trigger == Trigger.SCHEDULE and execution.schedule_id is not None:
        return format_html(
            _("Schedule {schedule}, fire time {time}"),
            schedule=change_link(BatchSchedule, execution.schedule_id, f"#{execution.schedule_id}"),
            time=moment(execution.scheduled_for),
        )
    if trigger == Trigger.DEPENDENCY and execution.triggered_by is not None:
        upstream = execution.triggered_by
        return format_html(
            _("Dependency: upstream {link} ended {status}"),
            link=change_link(BatchLog, upstream.pk, f"#{upstream.pk} {upstream.job.name}"),
            status=status_badge(upstream.status),
        )
    if trigger == Trigger.BACKFILL and execution.backfill_id is not None:
        return format_html(
            _("Backfill {link}, fire time {time}"),
            link=change_link(Backfill, execution.backfill_id, f"#{execution.backfill_id}"),
            time=moment(execution.scheduled_for),
        )
    if trigger == Trigger.RESTART and execution.restart_of_id is not None:
        return format_html(
            _("Restart of {link}"),
            link=change_link(BatchLog, execution.restart_of_id, f"#{execution.restart_of_id}"),
        )
    label = execution.get_trigger_display()
    if execution.created_by is not None:
        return format_html(
            _("{trigger}, by {user}"), trigger=label, user=execution.created_by.get_username()
        )
    return label


def next_retry_text(execution: BatchLog, now: datetime) -> SafeString | str:
    """Only while a retry waits: "in 12 s (2026-12-03 02:26:14 KST)"."""
    if (
        execution.status != ExecutionStatus.QUEUED
        or not execution.attempts
        or execution.next_attempt_at is None
    ):
        return ""
    if execution.next_attempt_at <= now:
        return _("due now, waiting for a worker")
    return format_html(
        '<time datetime="{}">{}</time> <span class="bj-relative">({})</span>',
        execution.next_attempt_at.isoformat(),
        relative_text(execution.next_attempt_at, now=now),
        stamp(execution.next_attempt_at),
    )


def duration_fact(execution: BatchLog, now: datetime) -> Fact:
    if execution.started_at is None:
        if execution.status in ACTIVE_STATUSES:
            return Fact(
                _("waiting for"), duration_text((now - execution.created_at).total_seconds()),
                "waiting",
            )  # fmt: skip
        return Fact(_("duration"), "-", "duration")
    if execution.status in ACTIVE_STATUSES or execution.finished_at is None:
        return Fact(
            _("running for"), duration_text((now - execution.started_at).total_seconds()),
            "duration",
        )  # fmt: skip
    return Fact(_("duration"), precise_duration(execution.duration_seconds), "duration")


def header_context(execution: BatchLog) -> dict[str, Any]:
    """The "what happened?" box: everything an operator looks for first."""
    now = timezone.now()
    facts = [
        Fact(
            _("attempt"),
            _("%(number)s of %(max)s")
            % {"number": execution.attempts, "max": execution.max_attempts},
            "attempt",
        ),  # fmt: skip
    ]
    retry = next_retry_text(execution, now)
    if retry:
        facts.append(Fact(_("next retry"), retry, "next_retry"))
    facts += [
        duration_fact(execution, now),
        Fact(_("triggered by"), trigger_text(execution), "trigger"),
        Fact(_("job"), change_link(BatchJob, execution.job_id, execution.job.name), "job"),
        Fact(_("logical time"), moment(execution.logical_time), "logical_time"),
    ]
    held = ""
    if execution.status == ExecutionStatus.QUEUED and execution.held_reason:
        held = held_reason_shown(execution.held_reason)
    return {
        "execution": execution,
        "badge": status_badge(execution.status),
        "held": held,
        "set_aside": set_aside_marker(execution),
        "error_line": error_summary(execution.error),
        "facts": facts,
        "progress": progress_bars(execution_progress(execution=execution))
        if execution.status in RUNNING_STATUSES or execution.progress_done is not None
        else "",
    }


def _level_class(level: int) -> str:
    if level >= logging.ERROR:
        return "bj-level-error"
    return "bj-level-warning" if level >= logging.WARNING else ""


def log_lines_html(lines: list[AttemptLogLine]) -> SafeString:
    """The log table's rows. Built here rather than by a template: a page shows hundreds of
    lines, and a template's per-node cost made them most of the page's time."""
    return format_html_join(
        "",
        '<tr data-line="{}"><td class="bj-log-time">{}</td><td class="bj-log-level {}">{}</td>'
        '<td class="bj-log-logger">{}</td><td class="bj-log-message">{}</td></tr>',
        (
            (
                line.number,
                time_of_day(line.logged_at),
                _level_class(line.level),
                logging.getLevelName(line.level),
                line.logger,
                line.message,
            )
            for line in lines
        ),
    )


def attempt_context(record: AttemptRecord) -> dict[str, Any]:
    attempt = record.attempt
    request = attempt.request or {}
    return {
        "record": record,
        "attempt": attempt,
        "badge": status_badge(attempt.status),
        "started": clock_time(attempt.started_at),
        "finished": clock_time(attempt.finished_at),
        "duration": precise_duration(attempt.duration_seconds),
        "gap": precise_duration(record.gap_seconds) if record.gap_seconds is not None else "",
        "error_line": error_summary(attempt.error),
        "request": request,
        "request_headers": sorted((request.get("headers") or {}).items()),
        "lines": record.lines,
        "lines_html": log_lines_html(record.lines),
    }


def attempts_html(records: list[AttemptRecord], request: HttpRequest) -> str:
    return "".join(
        render_to_string(
            "admin/batchjobs/batchlog/attempt.html",
            {"shown": attempt_context(record)},
            request=request,
        )
        for record in records
    )


def attempt_summary_html(record: AttemptRecord, request: HttpRequest) -> str:
    return render_to_string(
        "admin/batchjobs/batchlog/attempt_summary.html",
        {"shown": attempt_context(record)},
        request=request,
    )


def step_context(step: StepExecution, now: datetime) -> dict[str, Any]:
    if step.started_at is None:
        duration = "-"
    elif step.finished_at is None:
        duration = duration_text((now - step.started_at).total_seconds())  # so far
    else:
        duration = precise_duration((step.finished_at - step.started_at).total_seconds())
    return {
        "step": step,
        "badge": status_badge(step.status),
        "skips": f"{step.read_skip_count}/{step.process_skip_count}/{step.write_skip_count}",
        "started": clock_time(step.started_at),
        "duration": duration,
        "error_line": error_summary(step.error),
    }


def steps_html(execution: BatchLog, request: HttpRequest) -> str:
    """The batch job's steps table with their counters, on the page and in each live update."""
    steps, total = execution_steps(execution=execution)
    now = timezone.now()
    return render_to_string(
        "admin/batchjobs/batchlog/steps.html",
        {"steps": [step_context(step, now) for step in steps], "more": total - len(steps)},
        request=request,
    )


def header_html(execution: BatchLog, request: HttpRequest) -> str:
    return render_to_string(
        "admin/batchjobs/batchlog/header.html",
        {"header": header_context(execution)},
        request=request,
    )


def page_urls(execution: BatchLog) -> dict[str, str]:
    return {
        "live_url": reverse("admin:batchjobs_batchlog_live", args=[execution.pk]),
        "log_url": reverse("admin:batchjobs_batchlog_log", args=[execution.pk]),
    }
