"""A webhook's URL holds its token (Slack: /services/T…/B…/<token>): wherever a notification
target is shown or logged, only its scheme, host and port are (issue #11, 10)."""

import logging
import socket

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from batchjobs.models import ExecutionStatus, JobNotification, NotificationStatus
from batchjobs.rules.masking import SECRET_MASK, text_url_masked, url_masked
from batchjobs.services.notifications import (
    notification_deliver,
    notification_save,
    notifications_execution_ended,
)
from tests.support.factories import finished, handler_job

TOKEN = "xoxTOKENb1c2d3e4f5"
SLACK = f"https://hooks.slack.com/services/T0001/B0002/{TOKEN}"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (SLACK, f"https://hooks.slack.com/{SECRET_MASK}"),
        ("https://example.com/hook?token=abc", f"https://example.com/{SECRET_MASK}"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("http://[::1]:9/x", f"http://[::1]:9/{SECRET_MASK}"),
        ("https://user:pass@example.com/", f"https://example.com/{SECRET_MASK}"),
        ("not a url", SECRET_MASK),
        ("http://[broken/", SECRET_MASK),
    ],
)
def test_a_url_is_shown_with_scheme_host_and_port_only(url, shown):
    assert url_masked(url) == shown


def test_an_error_quoting_the_url_or_its_path_is_masked():
    error = (
        f"ConnectionError: HTTPSConnectionPool(host='hooks.slack.com', port=443): Max retries "
        f"exceeded with url: /services/T0001/B0002/{TOKEN} (refused); calling {SLACK}"
    )
    masked = text_url_masked(error, url=SLACK)
    assert TOKEN not in masked
    assert f"with url: {SECRET_MASK} (refused)" in masked
    assert f"calling https://hooks.slack.com/{SECRET_MASK}" in masked


@pytest.mark.parametrize("channel", ["slack", "webhook"])
def test_a_notifications_str_masks_its_webhook_url(channel):
    notification = JobNotification(channel=channel, target=SLACK)
    assert TOKEN not in str(notification)
    assert str(notification).endswith(f"to https://hooks.slack.com/{SECRET_MASK}")


def test_an_email_notifications_str_shows_its_addresses():
    notification = JobNotification(channel="email", target="ops@example.com")
    assert str(notification) == "Email to ops@example.com"


@pytest.mark.django_db
def test_a_failed_webhook_send_neither_logs_nor_records_the_token(
    caplog, django_capture_on_commit_callbacks, settings
):
    # given a Slack-style hook on a port where nothing listens (requests quotes the path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.BATCHJOBS_HTTP_ALLOWLIST = ["127.0.0.1"]
    job = handler_job("noop")
    notification_save(
        notification=JobNotification(
            job=job, channel="slack", target=f"http://127.0.0.1:{port}/services/T1/B2/{TOKEN}"
        )
    )
    execution = finished(job, ExecutionStatus.FAILED)
    with django_capture_on_commit_callbacks():
        [sent] = notifications_execution_ended(execution_id=execution.pk, status=execution.status)

    # when
    with caplog.at_level(logging.WARNING, logger="batchjobs.services.notifications"):
        assert notification_deliver(sent_id=sent.pk) == NotificationStatus.FAILED

    # then
    sent.refresh_from_db()
    assert "ConnectionError" in sent.error
    assert TOKEN not in sent.error
    assert caplog.records, "the failure was not logged"
    assert all(TOKEN not in record.getMessage() for record in caplog.records)
    assert f"http://127.0.0.1:{port}/{SECRET_MASK}" in caplog.records[-1].getMessage()


@pytest.mark.django_db
def test_a_viewer_of_the_job_page_sees_the_webhook_without_its_token(django_user_model, client):
    # given a job with a Slack hook, and a staff user who may only look
    job = handler_job("noop")
    notification_save(notification=JobNotification(job=job, channel="slack", target=SLACK))
    viewer = django_user_model.objects.create_user(username="viewer", password="x", is_staff=True)
    viewer.user_permissions.set(
        Permission.objects.filter(codename__in=["view_batchjob", "view_jobnotification"])
    )
    client.force_login(viewer)

    # when
    page = client.get(reverse("admin:batchjobs_batchjob_change", args=[job.pk])).content.decode()

    # then
    assert TOKEN not in page
    assert f"https://hooks.slack.com/{SECRET_MASK}" in page


@pytest.mark.django_db
def test_an_editor_of_the_job_page_gets_the_webhook_to_edit(admin_client):
    job = handler_job("noop")
    notification_save(notification=JobNotification(job=job, channel="slack", target=SLACK))

    page = admin_client.get(reverse("admin:batchjobs_batchjob_change", args=[job.pk]))

    assert TOKEN in page.content.decode()
