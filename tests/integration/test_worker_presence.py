"""Worker presence with real worker processes: a job whose queue no running worker consumes is
flagged in the API, the admin (list and change page) and the dashboard; the flag goes once a
worker consuming the queue announces itself, and comes back when that worker is gone: at once
when it stops cleanly, after the presence timeout when it is killed.

Each test uses queues of its own, so the session's workers (tests/conftest.py) never consume
them."""

import signal
import time
import uuid
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from batchjobs.models import BatchJob, BatchLog, ExecutionStatus
from batchjobs.selectors.workers import workers_present
from batchjobs.services.schedules import schedule_create
from tests.support.factories import handler_job, http_job, start
from tests.support.processes import queue_purge, start_lane, start_worker, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ANNOUNCE_EVERY = 0.3
PRESENCE_ENV = {"BATCHJOBS_WORKER_PRESENCE_SECONDS": str(ANNOUNCE_EVERY)}


@pytest.fixture
def queue():
    name = f"presence-{uuid.uuid4().hex[:8]}"
    yield name
    queue_purge(name)


def presence_timeout(settings, seconds: float) -> None:
    """How long this test process (the reader) counts a silent worker as present."""
    settings.BATCHJOBS_WORKER_PRESENCE_TIMEOUT_SECONDS = seconds


class Flags:
    """What each place says about a job's queue, read as a person (or a program) would."""

    def __init__(self, client, job: BatchJob):
        self.client, self.job = client, job

    def api(self) -> bool | None:
        response = self.client.get(reverse("api:job-detail", args=[self.job.pk]))
        assert response.status_code == 200, response.content
        return response.json()["queue_consumed"]

    def admin_list(self) -> bool:
        """The job's row in the job list carries the "no worker" mark."""
        response = self.client.get(reverse("admin:batchjobs_batchjob_changelist"))
        assert response.status_code == 200
        (row,) = [job for job in response.context["cl"].result_list if job.pk == self.job.pk]
        html = response.content.decode()
        marked = 'class="bj-no-consumer"' in html
        assert marked == (row.queue_consumed is False)  # only this job is on a lonely queue
        return marked

    def admin_change_page(self) -> str:
        response = self.client.get(reverse("admin:batchjobs_batchjob_change", args=[self.job.pk]))
        assert response.status_code == 200
        return " ".join(str(m) for m in get_messages(response.wsgi_request))

    def dashboard(self) -> str:
        response = self.client.get(reverse("admin:batchjobs_dashboard_live"))
        assert response.status_code == 200
        return response.content.decode()

    def all_flagged(self) -> None:
        queue = self.job.queue
        assert self.api() is False
        assert self.admin_list()
        assert f"No running worker consumes queue {queue!r}" in self.admin_change_page()
        page = self.dashboard()
        assert f'data-queue="{queue}"' in page
        assert f">{self.job.name}</a>" in page

    def none_flagged(self) -> None:
        assert self.api() is True
        assert not self.admin_list()
        assert "No running worker consumes" not in self.admin_change_page()
        assert f'data-queue="{self.job.queue}"' not in self.dashboard()


def test_a_lonely_queue_is_flagged_until_a_worker_consumes_it_and_again_once_it_is_killed(
    admin_client, settings, queue
):
    timeout = 2.0
    presence_timeout(settings, timeout)
    # given a scheduled job on a queue no worker consumes, with a run waiting in it
    job = handler_job("noop", queue=queue)
    tomorrow = timezone.now() + timedelta(days=1)
    schedule_create(job=job, kind="interval", interval_every=1, interval_unit="days",
                    start_at=tomorrow)  # fmt: skip
    waiting = start(job)
    flags = Flags(admin_client, job)

    # then the API, the admin and the dashboard say so
    flags.all_flagged()
    time.sleep(1)
    assert BatchLog.objects.get(pk=waiting.pk).status == ExecutionStatus.QUEUED

    # when a worker consuming the queue starts
    worker = start_worker(queues=queue, **PRESENCE_ENV)
    try:
        # then the run waiting goes through it, and the flag goes everywhere
        wait_until(
            lambda: BatchLog.objects.get(pk=waiting.pk).status == ExecutionStatus.COMPLETED,
            timeout=30,
            message="the waiting run did not complete once a worker consumed its queue",
        )
        wait_until(flags.api, timeout=10, message="the API did not see the worker")
        flags.none_flagged()

        # when the worker is killed (it cannot say goodbye)
        worker.kill(signal.SIGKILL)
        killed_at = time.monotonic()

        # then it still counts until its announcements are older than the presence timeout
        assert flags.api() is True
        wait_until(lambda: flags.api() is False, timeout=timeout + 10)
        silent_for = time.monotonic() - killed_at
        assert silent_for >= timeout - ANNOUNCE_EVERY - 0.2, f"flagged after {silent_for:.2f}s"
        flags.all_flagged()
    finally:
        worker.stop()


def test_a_worker_that_stops_cleanly_withdraws_its_queues_at_once(admin_client, settings, queue):
    # A long timeout: only the worker's own withdrawal can clear it this soon.
    presence_timeout(settings, 120)
    job = handler_job("noop", queue=queue)
    flags = Flags(admin_client, job)
    worker = start_worker(queues=queue, **PRESENCE_ENV)
    try:
        wait_until(flags.api, timeout=10, message="the API did not see the worker")
        (seen,) = [w for w in workers_present() or [] if queue in w.queues]
        assert (seen.pool, seen.concurrency) == ("prefork", 2)
    finally:
        worker.stop()  # SIGTERM: a warm shutdown

    assert flags.api() is False
    assert not [w for w in workers_present() or [] if queue in w.queues]


def test_an_http_job_waits_flagged_until_the_lane_starts_then_runs_through_it(
    admin_client, settings, queue, httpserver
):
    presence_timeout(settings, 5)
    # given the lane's queue is one of this test's own (the session's lane consumes the usual)
    settings.BATCHJOBS_HTTP_QUEUE = queue
    httpserver.expect_request("/ping").respond_with_json({"status": "ok"})
    job = http_job(httpserver.url_for("/ping"))
    assert job.queue == queue  # HTTP jobs go to the lane's queue by default
    run = start(job)
    flags = Flags(admin_client, job)
    flags.all_flagged()

    # when the lane starts, as quickstart and docker compose start it
    lane = start_lane(concurrency=50, BATCHJOBS_HTTP_QUEUE=queue, **PRESENCE_ENV)
    try:
        # then the HTTP run goes through the lane, and the lane says what it is
        wait_until(
            lambda: BatchLog.objects.get(pk=run.pk).status == ExecutionStatus.COMPLETED,
            timeout=30,
            message=f"the HTTP run did not complete through the lane:\n{lane.log()[-3000:]}",
        )
        assert BatchLog.objects.get(pk=run.pk).worker.startswith(lane.name)
        wait_until(flags.api, timeout=10, message="the API did not see the lane")
        flags.none_flagged()
        (seen,) = [w for w in workers_present() or [] if queue in w.queues]
        assert (seen.name.split("@")[0], seen.pool, seen.concurrency) == (lane.name, "gevent", 50)
    finally:
        lane.stop()
