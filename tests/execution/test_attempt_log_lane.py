"""Log lines in the I/O lane, with a real `celery worker -P gevent`: many HTTP attempts in
flight in one process, each greenlet's lines on its own attempt."""

import uuid

import pytest

from batchjobs.models import AttemptLogLine, ExecutionStatus
from tests.execution.test_io_lane import QUEUE, ended, endpoint, lanes  # noqa: F401 - fixtures
from tests.support.factories import http_job, start

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


def test_calls_in_flight_together_keep_their_lines_apart(endpoint, lanes):  # noqa: F811
    # given: 40 jobs, each calling a URL of its own that answers after 0.5 s
    lanes()
    jobs = [http_job(endpoint.url(f"log-{uuid.uuid4().hex[:8]}", 0.5), queue=QUEUE)
            for _ in range(40)]  # fmt: skip
    # when they run at once in one lane
    ids = [start(job).pk for job in jobs]
    runs = ended(ids, timeout=60)
    # then each attempt's one line is its own call
    assert {run.status for run in runs} == {ExecutionStatus.COMPLETED}
    lines: dict[int, list[str]] = {pk: [] for pk in ids}
    for execution_id, message in AttemptLogLine.objects.filter(
        attempt__execution_id__in=ids
    ).values_list("attempt__execution_id", "message"):
        lines[execution_id].append(message)
    for job, pk in zip(jobs, ids, strict=True):
        (line,) = lines[pk]
        assert line.startswith(f"GET {job.http_url} → 200 in "), line
