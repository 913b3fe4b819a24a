"""Notifications per job: deciding which events an execution's end (or an overdue schedule)
fired, and telling each one once through email, a JSON webhook or a Slack-compatible webhook.

Deciding claims a NotificationSent row per (notification, event, execution or missed fire); the
unique key makes the claim the once-only guard, and a Celery task sends each claimed row after
commit. Sending never raises into the job: a failure is logged and kept on the row.
"""

import json
import logging
import re
import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse

from batchjobs.http.client import http_call
from batchjobs.http.guard import url_errors
from batchjobs.models import (
    AuditAction,
    BatchLog,
    BatchSchedule,
    ExecutionStatus,
    JobNotification,
    NotificationChannel,
    NotificationEvent,
    NotificationSent,
    NotificationStatus,
    Trigger,
)
from batchjobs.models.clock import database_now
from batchjobs.models.set_aside import row_isolated
from batchjobs.rules.masking import text_url_masked

from .audit import audit_changes, audit_record, audit_snapshot, audit_stored
from .validation import instance_validate

logger = logging.getLogger(__name__)

# "Much longer than usual": over SLOW_FACTOR times the median of the job's last SLOW_SAMPLE
# completed runs, once there are SLOW_MIN_SAMPLES of them, and at least SLOW_MIN_SECONDS (a
# 40 ms run of a 10 ms job is not news).
SLOW_FACTOR = 3.0
SLOW_SAMPLE = 20
SLOW_MIN_SAMPLES = 5
SLOW_MIN_SECONDS = 1.0
SEND_TIMEOUT_SECONDS = 10.0
# Fires skipped as missed (misfire policy "skip") are looked for this far back.
SKIPPED_FIRES_LOOKBACK = timedelta(hours=1)
# scheduling.firing writes this at the start of the error of a fire it skipped as missed.
MISFIRE_SKIP_PREFIX = "misfire skip:"
ERROR_EXCERPT_CHARS = 1500
# An event still PENDING this long after it was claimed lost its message: send it again.
PENDING_RELAY_AFTER = timedelta(minutes=2)
ADDRESS_SEPARATORS = re.compile(r"[\s,;]+")


# --- configuration ---------------------------------------------------------------------------


def email_addresses(target: str) -> list[str]:
    return [address for address in ADDRESS_SEPARATORS.split(target or "") if address]


def notification_validate(*, notification: JobNotification) -> None:
    """Raise Django's ValidationError mapping each bad field to its messages."""
    errors: dict[str, list[str]] = {}
    target = (notification.target or "").strip()
    if notification.channel not in NotificationChannel.values:
        errors["channel"] = [f"Choose one of {', '.join(NotificationChannel.values)}."]
    elif not target:
        errors["target"] = ["Enter where to send: email addresses or a URL."]
    elif notification.channel == NotificationChannel.EMAIL:
        for address in email_addresses(target):
            try:
                validate_email(address)
            except DjangoValidationError:
                errors.setdefault("target", []).append(f"{address!r} is not an email address.")
    else:
        problems = url_errors(target)
        if problems:
            errors["target"] = problems
    if not any(getattr(notification, f"on_{event}") for event in NotificationEvent.values):
        errors["on_failure"] = ["Choose at least one event to send."]
    if errors:
        raise DjangoValidationError(errors)


def notification_save(*, notification: JobNotification, user=None) -> JobNotification:
    notification.target = (notification.target or "").strip()
    instance_validate(
        notification, validate=lambda: notification_validate(notification=notification)
    )
    before = audit_stored(notification)
    with transaction.atomic():
        notification.save()
        changes = audit_changes(before, audit_snapshot(notification))
        if changes:
            action = AuditAction.CREATED if before is None else AuditAction.CHANGED
            audit_record(action=action, obj=notification, user=user, changes=changes)
    return notification


def notification_delete(*, notification: JobNotification, user=None) -> None:
    with transaction.atomic():
        audit_record(action=AuditAction.DELETED, obj=notification, user=user)
        notification.delete()


# --- deciding --------------------------------------------------------------------------------


def _median_recent_duration(execution: BatchLog) -> tuple[float | None, int]:
    """The median duration of the job's last SLOW_SAMPLE completed runs before this one."""
    rows = (
        BatchLog.objects.filter(
            job_id=execution.job_id,
            status=ExecutionStatus.COMPLETED,
            started_at__isnull=False,
            finished_at__isnull=False,
        )
        .filter(_before(execution))
        .order_by("-created_at", "-pk")
        .values_list("started_at", "finished_at")[:SLOW_SAMPLE]
    )
    durations = [(finished - started).total_seconds() for started, finished in rows]
    if not durations:
        return None, 0
    return statistics.median(durations), len(durations)


def _before(execution: BatchLog) -> Q:
    return Q(created_at__lt=execution.created_at) | Q(
        created_at=execution.created_at, pk__lt=execution.pk
    )


def execution_events(
    *, execution: BatchLog, wanted: set[str] | frozenset[str] = frozenset(NotificationEvent.values)
) -> list[str]:
    """The events an execution that has just ended fired, among those `wanted` (the others are
    not worked out: each costs a query)."""
    if execution.status == ExecutionStatus.FAILED:
        return [NotificationEvent.FAILURE] if NotificationEvent.FAILURE in wanted else []
    if execution.status != ExecutionStatus.COMPLETED:
        return []
    events = []
    if NotificationEvent.RECOVERED in wanted:
        previous = (
            BatchLog.objects.filter(
                job_id=execution.job_id,
                status__in=(ExecutionStatus.COMPLETED, ExecutionStatus.FAILED),
            )
            .filter(_before(execution))
            .order_by("-created_at", "-pk")
            .values_list("status", flat=True)
            .first()
        )
        if previous == ExecutionStatus.FAILED:
            events.append(NotificationEvent.RECOVERED)
    duration = execution.duration_seconds
    if NotificationEvent.SLOW in wanted and duration is not None and duration >= SLOW_MIN_SECONDS:
        median, samples = _median_recent_duration(execution)
        if samples >= SLOW_MIN_SAMPLES and median is not None and duration > SLOW_FACTOR * median:
            events.append(NotificationEvent.SLOW)
    return events


def _claim(notification: JobNotification, event: str, **about: Any) -> NotificationSent | None:
    """The row that says this event goes out through this notification, and the task that
    sends it once this commits; None if the event was claimed before."""
    try:
        with transaction.atomic():
            sent = NotificationSent.objects.create(notification=notification, event=event, **about)
    except IntegrityError:
        return None
    transaction.on_commit(lambda: _enqueue(sent.pk))
    return sent


def _enqueue(sent_id: int) -> None:
    from batchjobs.execution.publish import NOTIFICATION_SEND_TASK, task_send

    try:
        task_send(NOTIFICATION_SEND_TASK, [sent_id])
    except Exception:  # the broker is away: notifications_relay_pending sends it later
        logger.warning("could not enqueue notification %s; it will be relayed", sent_id)


def notifications_relay_pending(*, older_than: timedelta = PENDING_RELAY_AFTER) -> int:
    """Enqueue again the events still PENDING after `older_than`: their message was lost (the
    broker was away). A duplicate is harmless: delivery takes a row from PENDING only once."""
    stale = list(
        NotificationSent.objects.filter(
            status=NotificationStatus.PENDING, created_at__lt=database_now() - older_than
        ).values_list("pk", flat=True)[:1000]
    )
    for sent_id in stale:
        _enqueue(sent_id)
    return len(stale)


def notifications_execution_ended(*, execution_id: int, status: str) -> list[NotificationSent]:
    """Called once an attempt's outcome is committed: claim and enqueue the events it fired.
    Only a final COMPLETED or FAILED can fire one; the other statuses cost nothing."""
    if status not in (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED):
        return []
    subscriptions = list(JobNotification.objects.filter(job__executions=execution_id, enabled=True))
    if not subscriptions:
        return []
    execution = BatchLog.objects.select_related("job").get(pk=execution_id)
    wanted = {event for subscription in subscriptions for event in subscription.events}
    events = execution_events(execution=execution, wanted=wanted)
    claimed = []
    for subscription in subscriptions:
        for event in events:
            if event in subscription.events:
                sent = _claim(subscription, event, execution=execution)
                if sent is not None:
                    claimed.append(sent)
    return claimed


def notifications_check_missed(
    *, now: datetime | None = None, errors: list[str] | None = None
) -> list[NotificationSent]:
    """The dead-man check (a housekeeping task, every minute): for each notification that
    wants missed runs, claim an event per schedule whose next fire is overdue by more than its
    grace, and per fire that beat skipped as missed (misfire policy skip). A notification or
    event whose check raises is left out, its error appended to `errors`; the others go on."""
    now = now or database_now()
    errors = [] if errors is None else errors
    claimed: list[NotificationSent] = []
    subscriptions = JobNotification.objects.filter(
        enabled=True, on_missed=True, job__enabled=True
    ).select_related("job")
    for subscription in subscriptions:
        with row_isolated(f"missed-run check of notification {subscription.pk}", errors):
            claimed += _claim_missed(subscription, now=now, errors=errors)
    return claimed


def _claim_missed(
    subscription: JobNotification, *, now: datetime, errors: list[str]
) -> list[NotificationSent]:
    claimed = []
    overdue = BatchSchedule.objects.filter(
        job_id=subscription.job_id,
        paused=False,
        next_fire_at__lt=now - timedelta(seconds=subscription.missed_grace_seconds),
    )
    for schedule in overdue:
        with row_isolated(f"missed-run event of schedule {schedule.pk}", errors):
            sent = _claim(
                subscription,
                NotificationEvent.MISSED,
                schedule=schedule,
                due_at=schedule.next_fire_at,
            )
            if sent is not None:
                claimed.append(sent)
    skipped = BatchLog.objects.filter(
        job_id=subscription.job_id,
        created_at__gte=now - SKIPPED_FIRES_LOOKBACK,
        status=ExecutionStatus.SKIPPED,
        trigger=Trigger.SCHEDULE,
        error__startswith=MISFIRE_SKIP_PREFIX,
    )
    for execution in skipped:
        with row_isolated(f"missed-run event of execution {execution.pk}", errors):
            sent = _claim(subscription, NotificationEvent.MISSED, execution=execution)
            if sent is not None:
                claimed.append(sent)
    return claimed


# --- sending ---------------------------------------------------------------------------------


class SendFailed(Exception):
    """The channel did not accept the message."""


@dataclass(frozen=True)
class NotificationMessage:
    subject: str
    text: str
    payload: dict[str, Any]


def _admin_url(name: str, pk: int) -> str:
    base = settings.BATCHJOBS_BASE_URL
    return f"{base.rstrip('/')}{reverse(name, args=[pk])}" if base else ""


def _error_summary(error: str) -> str:
    """The line that names the exception: the last line of a traceback."""
    lines = (error or "").strip().splitlines()
    return lines[-1] if lines else ""


def notification_message(*, sent: NotificationSent) -> NotificationMessage:
    """What is said about one event: a subject, a one-paragraph text, a JSON payload."""
    job = sent.notification.job
    payload: dict[str, Any] = {
        "event": sent.event,
        "job": {"id": job.pk, "name": job.name, "kind": job.kind},
    }
    if sent.execution_id is not None:
        execution = sent.execution
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
        url = _admin_url("admin:batchjobs_batchlog_change", execution.pk)
        what = {
            NotificationEvent.FAILURE: f"failed after {execution.attempts} attempt(s)",
            NotificationEvent.RECOVERED: "succeeded again after a failure",
            NotificationEvent.SLOW: f"took {duration or 0:.1f} s, much longer than usual",
            NotificationEvent.MISSED: "skipped a fire it missed",
        }[sent.event]
        headline = f"Job {job.name}: execution #{execution.pk} {what}"
        detail = _error_summary(execution.error) if sent.event != NotificationEvent.SLOW else ""
    else:
        schedule = sent.schedule
        payload["schedule"] = {
            "id": schedule.pk,
            "summary": schedule.summary,
            "due_at": sent.due_at,
            "next_fire_at": schedule.next_fire_at,
        }
        url = _admin_url("admin:batchjobs_batchschedule_change", schedule.pk)
        late = (database_now() - sent.due_at).total_seconds()
        headline = (
            f"Job {job.name}: the run due at {sent.due_at:%Y-%m-%d %H:%M:%S} UTC has not "
            f"happened ({late:.0f} s late; is beat running?)"
        )
        detail = f"Schedule: {schedule.summary}"
        if schedule.set_aside_at is not None:
            payload["schedule"]["set_aside_reason"] = schedule.set_aside_reason
            headline = (
                f"Job {job.name}: the run due at {sent.due_at:%Y-%m-%d %H:%M:%S} UTC has not "
                "happened: beat set its schedule aside"
            )
            detail += f"\nSet aside: {schedule.set_aside_reason}\nFix and save it to fire again."
    text = "\n".join(part for part in (headline, detail, url) if part)
    payload["text"] = text
    payload["url"] = url
    return NotificationMessage(subject=f"[batchjobs] {headline}", text=text, payload=payload)


def _post_json(url: str, payload: dict[str, Any]) -> None:
    response = http_call(
        method="POST",
        url=url,
        headers={"Content-Type": "application/json", "User-Agent": "batchjobs-notifications"},
        body=json.dumps(payload, cls=DjangoJSONEncoder).encode(),
        deadline=time.monotonic() + SEND_TIMEOUT_SECONDS,
    )
    if not 200 <= response.status < 300:
        raise SendFailed(f"HTTP {response.status}: {response.text()[:300]}")


def _send(notification: JobNotification, message: NotificationMessage) -> None:
    if notification.channel == NotificationChannel.EMAIL:
        send_mail(
            message.subject,
            message.text,
            None,  # DEFAULT_FROM_EMAIL
            email_addresses(notification.target),
            fail_silently=False,
        )
    elif notification.channel == NotificationChannel.WEBHOOK:
        _post_json(notification.target, message.payload)
    else:
        _post_json(notification.target, {"text": message.text})


def notification_deliver(*, sent_id: int) -> str | None:
    """Send one claimed event (the Celery task's body); returns SENT or FAILED, or None if
    another delivery of the message took it. Never raises for a failing channel."""
    if not NotificationSent.objects.filter(pk=sent_id, status=NotificationStatus.PENDING).update(
        status=NotificationStatus.SENDING
    ):
        return None
    sent = NotificationSent.objects.select_related(
        "notification__job", "execution", "schedule"
    ).get(pk=sent_id)
    try:
        _send(sent.notification, notification_message(sent=sent))
    except Exception as exc:  # any channel failure: recorded, never the job's problem
        failure = f"{type(exc).__name__}: {exc}"
        if sent.notification.channel != NotificationChannel.EMAIL:  # the URL holds a token
            failure = text_url_masked(failure, url=sent.notification.target)
        logger.warning("notification %s (%s) failed: %s", sent_id, sent.notification, failure)
        status, error = NotificationStatus.FAILED, failure[:2000]
    else:
        status, error = NotificationStatus.SENT, ""
    NotificationSent.objects.filter(pk=sent_id).update(
        status=status, error=error, sent_at=database_now()
    )
    return status
