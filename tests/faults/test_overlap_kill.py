"""A worker SIGKILLed mid-attempt of an overlap-`skip` job (issue 11, 4): the run it was making
is retried and completes; the policy skips new fires, never the retry of a run that started."""

import signal

import pytest

from batchjobs.models import AttemptStatus, BatchLog, ExecutionStatus
from batchjobs.models.execution import FINAL_STATUSES
from batchjobs.services.schedules import schedule_create, schedule_pause
from tests.support.checker import check_invariants
from tests.support.factories import http_job
from tests.support.processes import FAST_RECOVERY_ENV, start_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.integration]
QUEUE = "faults-overlap"
RECOVERY_BOUND = float(FAST_RECOVERY_ENV["BATCHJOBS_HEARTBEAT_TIMEOUT_SECONDS"]) + 10


def test_a_killed_run_of_a_skip_job_is_retried_not_skipped(beat, sink):
    # A 2.5 s call every 2 s keeps a run going most of the time; a 2 s backoff brings the
    # retry due while the first fire after the reaping is running, and a second worker
    # process takes it then.
    job = http_job(
        sink.url("/slow/2.5"), queue=QUEUE, overlap_policy="skip", timeout_seconds=10,
        max_attempts=3, retry_backoff_seconds=2,
    )  # fmt: skip
    first = start_worker(queues=QUEUE, concurrency=2)
    schedule = schedule_create(job=job, kind="interval", interval_every=2, interval_unit="seconds")
    try:
        calling = wait_until(lambda: [s for s in sink.requests if s.finished is None],
                             timeout=30, message="no call in flight")  # fmt: skip
        first.kill(signal.SIGKILL)
        first.stop()
        killed = BatchLog.objects.get(pk=int(calling[0].key))
        second = start_worker(queues=QUEUE, concurrency=2)
        try:
            done = wait_until(
                lambda: BatchLog.objects.filter(pk=killed.pk, status__in=FINAL_STATUSES).first(),
                timeout=RECOVERY_BOUND + 60, message="the killed run did not end",
            )  # fmt: skip
            schedule_pause(schedule=schedule)
            wait_until(
                lambda: not BatchLog.objects.filter(job=job)
                .exclude(status__in=FINAL_STATUSES)
                .exists(),
                timeout=30, message="runs of the job did not all end",
            )  # fmt: skip
        finally:
            second.stop()
    finally:
        first.stop()
    assert done.status == ExecutionStatus.COMPLETED, done.error
    assert list(done.attempt_rows.values_list("status", flat=True)) == [
        AttemptStatus.LOST, AttemptStatus.SUCCEEDED,
    ]  # fmt: skip
    assert [seen.attempt for seen in sink.for_key(str(killed.pk))] == ["1", "2"]
    # new fires that met a running one were skipped, as the policy says
    assert BatchLog.objects.filter(job=job, status=ExecutionStatus.SKIPPED).exists()
    check_invariants(sink=sink)
