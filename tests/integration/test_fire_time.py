"""The fire time through the real I/O lane (gevent): an HTTP job's templates are filled in by
the worker, and the attempt shows the request as sent while the call is still in flight."""

import threading
from datetime import UTC, datetime

import pytest
from werkzeug import Response

from batchjobs.models import BatchAttempt, BatchLog, ExecutionStatus
from batchjobs.rules.masking import SECRET_MASK
from batchjobs.services import operator
from tests.support.factories import http_job
from tests.support.processes import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


def test_the_lane_sends_the_filled_in_request_and_shows_it_while_in_flight(worker, httpserver):
    # given: an endpoint that holds the call until the test has looked at the attempt
    release = threading.Event()

    def held(request):
        release.wait(20)
        return Response("done")

    httpserver.expect_request("/period").respond_with_handler(held)
    job = http_job(
        httpserver.url_for("/period") + '?day={{ logical_time | date:"%Y-%m-%d" }}',
        http_headers=[{"name": "X-Key", "value": "k3y-{{ attempt }}", "secret": True}],
        timeout_seconds=30,
    )
    # when
    execution = operator.job_start(job_name=job.name, logical_time=datetime(2027, 1, 4, tzinfo=UTC))
    try:
        in_flight = wait_until(
            lambda: (
                BatchAttempt.objects.filter(execution=execution, request__isnull=False)
                .values_list("request", flat=True)
                .first()
            ),
            timeout=30,
            message="the attempt's request was not stored before the call",
        )
        still_running = BatchLog.objects.get(pk=execution.pk).status
    finally:
        release.set()
    # then: stored before the call ended, as sent, the secret masked
    assert still_running == ExecutionStatus.STARTED
    assert in_flight["url"].endswith("/period?day=2027-01-04")
    assert in_flight["headers"]["X-Key"] == SECRET_MASK
    done = wait_until(
        lambda: BatchLog.objects.filter(pk=execution.pk, status=ExecutionStatus.COMPLETED).first(),
        timeout=30,
        message="the run did not complete",
    )
    assert done.logical_time == datetime(2027, 1, 4, tzinfo=UTC)
    request, _ = httpserver.log[0]
    assert request.args["day"] == "2027-01-04"
    assert request.headers["X-Key"] == "k3y-1"
