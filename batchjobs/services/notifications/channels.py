"""Delivery: email, a JSON webhook, or a Slack-compatible webhook. A claimed event goes out
through a Celery task (published by name after its claim commits); one still PENDING after
PENDING_RELAY_AFTER lost its message and is published again. Sending never raises into the
job: a failure is logged and kept on the row, the webhook's token masked.
"""

import json
import logging
import re
import time
from datetime import timedelta
from typing import Any

from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder

from batchjobs.execution.publish import NOTIFICATION_SEND_TASK, task_send
from batchjobs.http.client import http_call
from batchjobs.models import (
    JobNotification,
    NotificationChannel,
    NotificationSent,
    NotificationStatus,
)
from batchjobs.models.clock import database_now
from batchjobs.rules.masking import text_url_masked

from .messages import NotificationMessage, notification_message

logger = logging.getLogger(__name__)

SEND_TIMEOUT_SECONDS = 10.0
# An event still PENDING this long after it was claimed lost its message: send it again.
PENDING_RELAY_AFTER = timedelta(minutes=2)
ADDRESS_SEPARATORS = re.compile(r"[\s,;]+")


def email_addresses(target: str) -> list[str]:
    return [address for address in ADDRESS_SEPARATORS.split(target or "") if address]


def notification_enqueue(*, sent_id: int) -> None:
    """Publish the task that sends one claimed event."""
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
        notification_enqueue(sent_id=sent_id)
    return len(stale)


class SendFailed(Exception):
    """The channel did not accept the message."""


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
