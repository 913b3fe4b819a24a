"""Notifications are written in the deployment's language (LANGUAGE_CODE, set by
BATCHJOBS_LANGUAGE), whoever renders them: a worker has no request to take one from, and a
message must not change with the browser of whoever happens to be logged in. The payload's keys
and values are data and stay the same in every language."""

import re
from datetime import timedelta

import pytest
from django.utils import translation

from batchjobs.models import (
    ExecutionStatus,
    JobNotification,
    NotificationEvent,
    NotificationSent,
)
from batchjobs.models.clock import database_now
from batchjobs.services.notifications import notification_save
from batchjobs.services.notifications.messages import notification_message
from batchjobs.services.schedules import schedule_create
from tests.support.factories import finished, handler_job

pytestmark = pytest.mark.django_db

HANGUL = re.compile("[\uac00-\ud7a3]")


def failure_event() -> NotificationSent:
    job = handler_job("noop", name="nightly")
    notification = notification_save(
        notification=JobNotification(job=job, channel="email", target="ops@example.com")
    )
    execution = finished(job, ExecutionStatus.FAILED)
    execution.attempts = execution.max_attempts = 3
    execution.save(update_fields=["attempts", "max_attempts"])
    return NotificationSent.objects.create(
        notification=notification, event=NotificationEvent.FAILURE, execution=execution
    )


def missed_fire_event() -> NotificationSent:
    job = handler_job("noop", name="hourly")
    notification = notification_save(
        notification=JobNotification(
            job=job, channel="webhook", target="http://example.com/hook", on_missed=True
        )
    )
    schedule = schedule_create(job=job, kind="interval", interval_every=1)
    return NotificationSent.objects.create(
        notification=notification,
        event=NotificationEvent.MISSED,
        schedule=schedule,
        due_at=database_now() - timedelta(minutes=10),
    )


def test_a_failure_is_told_in_korean_when_the_deployment_speaks_korean(settings):
    # given
    settings.LANGUAGE_CODE = "ko"
    sent = failure_event()

    # when: rendered while a request in English is being answered
    with translation.override("en"):
        message = notification_message(sent=sent)

    # then
    assert message.subject.startswith("[batchjobs] ")
    for text in (message.subject, message.text):
        assert HANGUL.search(text), text
        assert "nightly" in text and f"#{sent.execution_id}" in text and "3" in text
        assert "failed after" not in text and "Job " not in text
    assert message.payload["text"] == message.text
    assert message.payload["event"] == "failure"
    assert message.payload["execution"]["status"] == "FAILED"


def test_a_missed_fire_is_told_in_korean_when_the_deployment_speaks_korean(settings):
    # given
    settings.LANGUAGE_CODE = "ko"
    sent = missed_fire_event()

    # when
    message = notification_message(sent=sent)

    # then
    assert HANGUL.search(message.subject), message.subject
    assert "has not happened" not in message.text and "Schedule:" not in message.text
    assert f"{sent.due_at:%Y-%m-%d %H:%M:%S}" in message.subject
    assert message.payload["event"] == "missed"


def test_the_same_events_are_told_in_english_by_an_english_deployment(settings):
    # given
    settings.LANGUAGE_CODE = "en"
    failure, missed = failure_event(), missed_fire_event()

    # when: rendered while a request in Korean is being answered
    with translation.override("ko"):
        about_failure = notification_message(sent=failure)
        about_missed = notification_message(sent=missed)

    # then
    assert about_failure.subject == (
        f"[batchjobs] Job nightly: execution #{failure.execution_id} failed after 3 attempts"
    )
    assert about_missed.subject.startswith(
        f"[batchjobs] Job hourly: the run due at {missed.due_at:%Y-%m-%d %H:%M:%S} UTC has not "
        "happened ("
    )
    assert "Schedule: " in about_missed.text
    assert not HANGUL.search(about_failure.text + about_missed.text)


def test_a_missed_fire_is_told_in_the_deployment_s_display_zone(settings):
    # given: a team in Seoul; the payload stays in UTC
    settings.BATCHJOBS_TIME_ZONE = "Asia/Seoul"
    sent = missed_fire_event()
    in_seoul = sent.due_at + timedelta(hours=9)

    # when
    message = notification_message(sent=sent)

    # then
    assert f"the run due at {in_seoul:%Y-%m-%d %H:%M:%S} KST has not happened (" in message.text
    assert message.payload["schedule"]["due_at"] == sent.due_at
