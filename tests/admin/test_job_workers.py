"""The admin flags a job whose queue no running worker consumes: a mark in the job list, a
warning on its page, a line on the dashboard naming the queue and its jobs; "unknown" (and no
error) when the broker cannot tell. The job form sets max_running."""

import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from batchjobs.models import BatchJob
from batchjobs.services.schedules import schedule_create
from tests.support.admin_forms import form_errors, job_form_data
from tests.support.factories import handler_job
from tests.support.presence import broker_unreachable, worker_announced

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:batchjobs_batchjob_changelist")
LIVE = reverse("admin:batchjobs_dashboard_live")
NO_CONSUMER_MARK = 'class="bj-no-consumer"'


@pytest.fixture
def lonely_job() -> BatchJob:
    """An enabled, scheduled job on a queue of its own."""
    job = handler_job("noop", queue=f"admin-{uuid.uuid4().hex[:8]}")
    schedule_create(job=job, kind="interval", interval_every=1, interval_unit="days",
                    start_at=timezone.now() + timedelta(days=1))  # fmt: skip
    return job


def change_page_messages(client, job: BatchJob) -> list[str]:
    response = client.get(reverse("admin:batchjobs_batchjob_change", args=[job.pk]))
    assert response.status_code == 200
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_the_job_list_marks_a_job_whose_queue_no_worker_consumes(admin_client, lonely_job):
    flagged = admin_client.get(CHANGELIST)
    with worker_announced([lonely_job.queue]):
        served = admin_client.get(CHANGELIST)

    assert NO_CONSUMER_MARK in flagged.content.decode()
    title = escape(f"No running worker consumes queue {lonely_job.queue!r}")
    assert title in flagged.content.decode()  # the mark's tooltip says why
    assert NO_CONSUMER_MARK not in served.content.decode()
    assert lonely_job.queue in served.content.decode()  # the column shows the queue still


def test_the_job_page_warns_while_no_worker_consumes_its_queue(admin_client, lonely_job):
    (warning,) = change_page_messages(admin_client, lonely_job)
    assert warning.startswith(f"No running worker consumes queue {lonely_job.queue!r}")
    assert f"-Q {lonely_job.queue}" in warning

    with worker_announced([lonely_job.queue]):
        assert change_page_messages(admin_client, lonely_job) == []


def test_the_dashboard_names_the_queue_and_its_jobs(admin_client, lonely_job):
    page = admin_client.get(LIVE).content.decode()
    with worker_announced([lonely_job.queue]):
        served = admin_client.get(LIVE).content.decode()

    assert f'data-queue="{lonely_job.queue}"' in page
    job_url = reverse("admin:batchjobs_batchjob_change", args=[lonely_job.pk])
    assert f'<a href="{job_url}">{lonely_job.name}</a>' in page
    assert f'data-queue="{lonely_job.queue}"' not in served


def test_the_dashboard_shows_what_each_worker_announced(admin_client):
    queue = f"admin-{uuid.uuid4().hex[:8]}"
    with worker_announced([queue, "batchjobs"], pool="gevent", concurrency=500) as name:
        page = admin_client.get(LIVE).content.decode()

    (line,) = re.findall(rf'<div class="quiet" data-worker="{re.escape(name)}">(.*?)</div>', page)
    shown = re.sub(r"<[^>]+>", "", line)  # the name is marked translate="no"
    assert shown == f"{name}: gevent &times; 500, queues {', '.join(sorted([queue, 'batchjobs']))}"


def test_every_page_answers_unknown_when_the_broker_cannot_be_reached(admin_client, lonely_job):
    with broker_unreachable():
        listed = admin_client.get(CHANGELIST)
        messages = change_page_messages(admin_client, lonely_job)
        dashboard = admin_client.get(LIVE)

    assert listed.status_code == dashboard.status_code == 200
    assert NO_CONSUMER_MARK not in listed.content.decode()
    assert messages == [
        f"Whether a running worker consumes queue {lonely_job.queue!r} is unknown: the broker "
        "(Redis) does not answer."
    ]
    assert 'id="queues-without-consumer"' not in dashboard.content.decode()
    assert "The broker (Redis) does not answer." in dashboard.content.decode()


def test_the_job_form_sets_max_running(admin_client):
    response = admin_client.post(
        reverse("admin:batchjobs_batchjob_add"), job_form_data(max_running="4")
    )

    assert response.status_code == 302, form_errors(response)
    assert BatchJob.objects.get(name="nightly-report").max_running == 4


def test_the_job_form_refuses_a_bad_max_running_naming_the_field(admin_client):
    response = admin_client.post(
        reverse("admin:batchjobs_batchjob_add"), job_form_data(max_running="0")
    )

    assert response.status_code == 200
    assert list(form_errors(response)) == ["max_running"]
    assert not BatchJob.objects.exists()
