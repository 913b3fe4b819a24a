"""What is said about one event: a subject, a one-paragraph text and a JSON payload, with a
link to the execution or schedule in the admin when BATCHJOBS_BASE_URL is set. The subject and
text are in the deployment's language (LANGUAGE_CODE, set by BATCHJOBS_LANGUAGE) and its display
zone (BATCHJOBS_TIME_ZONE), whoever or whatever renders them; the payload's keys and values are
data and stay as they are (its times in UTC)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Q
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from batchjobs.models import (
    BatchLog,
    BatchSchedule,
    NotificationEvent,
    NotificationSent,
    OccurrenceOutcome,
    ScheduleOccurrence,
)
from batchjobs.models.clock import database_now
from batchjobs.selectors.executions import error_summary

from ..preferences import default_time_zone

ERROR_EXCERPT_CHARS = 1500


@dataclass(frozen=True)
class NotificationMessage:
    subject: str
    text: str
    payload: dict[str, Any]


def _moment(value: datetime) -> str:
    """A point in time as the deployment's operators read it: in its display zone, to the
    second, the zone named ("2026-12-03 23:50:00 KST")."""
    local = value.astimezone(ZoneInfo(default_time_zone()))
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()}"


def _admin_url(name: str, pk: int) -> str:
    base = settings.BATCHJOBS_BASE_URL
    return f"{base.rstrip('/')}{reverse(name, args=[pk])}" if base else ""


def notification_message(*, sent: NotificationSent) -> NotificationMessage:
    """What is said about one event: a subject, a one-paragraph text, a JSON payload. An event
    is about an execution, or (a run that never happened) about a schedule's missed fire."""
    # A worker has no request to take a language from, and a message rendered during a
    # request (an operator's) must not change with that operator's browser.
    with translation.override(settings.LANGUAGE_CODE):
        return _message(sent)


def _message(sent: NotificationSent) -> NotificationMessage:
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
    line = _("Job %(job)s: %(headline)s") % {"job": job.name, "headline": headline}
    text = "\n".join(part for part in (line, detail, url) if part)
    payload["text"] = text
    payload["url"] = url
    return NotificationMessage(subject=f"[batchjobs] {line}", text=text, payload=payload)


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
    values = {"id": execution.pk, "attempts": execution.attempts, "seconds": f"{duration or 0:.1f}"}
    if event == NotificationEvent.FAILURE:
        headline = ngettext(
            "execution #%(id)s failed after %(attempts)s attempt",
            "execution #%(id)s failed after %(attempts)s attempts",
            execution.attempts,
        )
    else:
        headline = {
            NotificationEvent.RECOVERED.value: _(
                "execution #%(id)s succeeded again after a failure"
            ),
            NotificationEvent.SLOW.value: _(
                "execution #%(id)s took %(seconds)s s, much longer than usual"
            ),
            NotificationEvent.MISSED.value: _("execution #%(id)s skipped a fire it missed"),
        }[event]
    detail = error_summary(execution.error) if event != NotificationEvent.SLOW else ""
    url = _admin_url("admin:batchjobs_batchlog_change", execution.pk)
    return headline % values, detail, url


def _skipped_as_missed(schedule: BatchSchedule, due_at: datetime) -> ScheduleOccurrence | None:
    """The occurrence record that says beat skipped the fire at `due_at` as missed, if any (a
    row of its own, or a run of fires that holds it)."""
    return (
        ScheduleOccurrence.objects.filter(
            schedule=schedule,
            outcome=OccurrenceOutcome.MISSED_SKIPPED,
            scheduled_for__lte=due_at,
        )
        .filter(Q(scheduled_for=due_at) | Q(last_scheduled_for__gte=due_at))
        .first()
    )


def _about_missed_fire(
    schedule: BatchSchedule, due_at: datetime, payload: dict[str, Any]
) -> tuple[str, str, str]:
    payload["schedule"] = {
        "id": schedule.pk,
        "summary": schedule.summary,
        "due_at": due_at,
        "next_fire_at": schedule.next_fire_at,
    }
    due = _moment(due_at)
    detail = _("Schedule: %(summary)s") % {"summary": schedule.summary}
    url = _admin_url("admin:batchjobs_batchschedule_change", schedule.pk)
    skipped = _skipped_as_missed(schedule, due_at)
    if skipped is not None:
        payload["schedule"]["skipped"] = {"fires": skipped.fires, "reason": skipped.reason}
        detail += "\n" + skipped.reason
        headline = _("the run due at %(due)s was skipped as missed (misfire policy skip)") % {
            "due": due
        }
        return headline, detail, url
    if schedule.set_aside_at is None:
        late = f"{(database_now() - due_at).total_seconds():.0f}"
        headline = _(
            "the run due at %(due)s has not happened (%(late)s s late; is beat running?)"
        ) % {"due": due, "late": late}
        return headline, detail, url
    payload["schedule"]["set_aside_reason"] = schedule.set_aside_reason
    detail += "\n" + _("Set aside: %(reason)s") % {"reason": schedule.set_aside_reason}
    detail += "\n" + _("Fix and save it to fire again.")
    headline = _("the run due at %(due)s has not happened: beat set its schedule aside") % {
        "due": due
    }
    return headline, detail, url
