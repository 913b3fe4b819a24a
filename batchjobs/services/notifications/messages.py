"""What is said about one event: a subject, a one-paragraph text and a JSON payload, with a
link to the execution or schedule in the admin when BATCHJOBS_BASE_URL is set."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.urls import reverse

from batchjobs.models import BatchLog, BatchSchedule, NotificationEvent, NotificationSent
from batchjobs.models.clock import database_now
from batchjobs.selectors.executions import error_summary

ERROR_EXCERPT_CHARS = 1500


@dataclass(frozen=True)
class NotificationMessage:
    subject: str
    text: str
    payload: dict[str, Any]


def _admin_url(name: str, pk: int) -> str:
    base = settings.BATCHJOBS_BASE_URL
    return f"{base.rstrip('/')}{reverse(name, args=[pk])}" if base else ""


def notification_message(*, sent: NotificationSent) -> NotificationMessage:
    """What is said about one event: a subject, a one-paragraph text, a JSON payload. An event
    is about an execution, or (a run that never happened) about a schedule's missed fire."""
    job = sent.notification.job
    payload: dict[str, Any] = {
        "event": sent.event,
        "job": {"id": job.pk, "name": job.name, "kind": job.kind},
    }
    if sent.execution is not None:
        headline, detail, url = _about_execution(sent.execution, sent.event, payload)
    elif sent.schedule is not None and sent.due_at is not None:
        headline, detail, url = _about_missed_fire(sent.schedule, sent.due_at, payload)
    else:  # the table's check constraint allows neither
        raise ValueError(f"notification event {sent.pk} names no execution nor a missed fire")
    text = "\n".join(part for part in (f"Job {job.name}: {headline}", detail, url) if part)
    payload["text"] = text
    payload["url"] = url
    return NotificationMessage(
        subject=f"[batchjobs] Job {job.name}: {headline}", text=text, payload=payload
    )


def _about_execution(
    execution: BatchLog, event: str, payload: dict[str, Any]
) -> tuple[str, str, str]:
    duration = execution.duration_seconds
    payload["execution"] = {
        "id": execution.pk,
        "status": execution.status,
        "trigger": execution.trigger,
        "scheduled_for": execution.scheduled_for,
        "started_at": execution.started_at,
        "finished_at": execution.finished_at,
        "duration_seconds": duration,
        "attempts": execution.attempts,
        "error": execution.error[:ERROR_EXCERPT_CHARS],
    }
    what = {
        NotificationEvent.FAILURE.value: f"failed after {execution.attempts} attempt(s)",
        NotificationEvent.RECOVERED.value: "succeeded again after a failure",
        NotificationEvent.SLOW.value: f"took {duration or 0:.1f} s, much longer than usual",
        NotificationEvent.MISSED.value: "skipped a fire it missed",
    }[event]
    detail = error_summary(execution.error) if event != NotificationEvent.SLOW else ""
    url = _admin_url("admin:batchjobs_batchlog_change", execution.pk)
    return f"execution #{execution.pk} {what}", detail, url


def _about_missed_fire(
    schedule: BatchSchedule, due_at: datetime, payload: dict[str, Any]
) -> tuple[str, str, str]:
    payload["schedule"] = {
        "id": schedule.pk,
        "summary": schedule.summary,
        "due_at": due_at,
        "next_fire_at": schedule.next_fire_at,
    }
    due = f"the run due at {due_at:%Y-%m-%d %H:%M:%S} UTC has not happened"
    detail = f"Schedule: {schedule.summary}"
    url = _admin_url("admin:batchjobs_batchschedule_change", schedule.pk)
    if schedule.set_aside_at is None:
        late = (database_now() - due_at).total_seconds()
        return f"{due} ({late:.0f} s late; is beat running?)", detail, url
    payload["schedule"]["set_aside_reason"] = schedule.set_aside_reason
    detail += f"\nSet aside: {schedule.set_aside_reason}\nFix and save it to fire again."
    return f"{due}: beat set its schedule aside", detail, url
