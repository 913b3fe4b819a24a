"""The execution path through real worker and beat processes, PostgreSQL/SQLite and Redis."""

import time

import pytest
from django.db.models import Count

from batchjobs.models import AttemptStatus, BatchAttempt, BatchLog, ExecutionStatus
from tests.support.factories import handler_job, http_job, start
from tests.support.processes import start_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.integration]


def finished(execution: BatchLog, timeout: float = 30) -> BatchLog:
    return wait_until(
        lambda: BatchLog.objects.filter(
            pk=execution.pk,
            status__in=[ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.SKIPPED],
        ).first(),
        timeout=timeout,
        message=f"execution {execution.pk} did not finish within {timeout}s",
    )


def test_handler_job_completes_on_a_worker(worker):
    execution = finished(start(handler_job("noop")))
    assert execution.status == ExecutionStatus.COMPLETED
    assert execution.result == {"ok": True}
    attempt = execution.attempt_rows.get()
    assert attempt.worker.startswith("worker-")
    assert attempt.task_id


def test_http_503_then_success_is_retried_by_beat_with_the_same_key(worker, beat, httpserver):
    # given an endpoint that is unavailable once, and a one-second backoff
    httpserver.expect_ordered_request("/flaky").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request("/flaky").respond_with_data("fine")
    job = http_job(httpserver.url_for("/flaky"), max_attempts=3, retry_backoff_seconds=1)
    # when
    execution = finished(start(job))
    # then the retry waited in the database, not in the broker, and reused the key
    attempts = list(execution.attempt_rows.order_by("number").values_list("status", "error"))
    assert execution.status == ExecutionStatus.COMPLETED, attempts
    first, second = execution.attempt_rows.order_by("number")
    assert (first.http_status, second.http_status) == (503, 200)
    assert (second.started_at - first.finished_at).total_seconds() >= 0.9
    keys = {request.headers["Idempotency-Key"] for request, _ in httpserver.log}
    assert keys == {str(execution.pk)}


def test_handler_timeout_ends_the_attempt_even_if_the_handler_swallows_exceptions(worker):
    job = handler_job(
        "tests.swallow_timeout", timeout_seconds=1, max_attempts=1, params={"seconds": 30}
    )
    started = time.monotonic()
    execution = finished(start(job), timeout=20)
    assert execution.status == ExecutionStatus.FAILED
    assert execution.attempt_rows.get().status == AttemptStatus.TIMED_OUT
    assert time.monotonic() - started < 10


def test_a_job_that_kills_its_worker_ends_failed_after_max_attempts(worker, beat):
    # given a handler that SIGKILLs the process running it, and a healthy job beside it
    killer = handler_job("tests.kill_worker", max_attempts=2)
    healthy = handler_job("noop")
    # when
    doomed = start(killer)
    execution = finished(doomed, timeout=60)
    survivor = finished(start(healthy))
    # then the attempt count in the database ended it, not a redelivery loop
    assert execution.status == ExecutionStatus.FAILED
    assert execution.attempts == 2
    assert list(execution.attempt_rows.values_list("status", flat=True)) == [
        AttemptStatus.LOST,
        AttemptStatus.LOST,
    ]
    time.sleep(2)  # a late redelivery, if any, would show up as a third attempt
    assert BatchAttempt.objects.filter(execution=execution).count() == 2
    assert survivor.status == ExecutionStatus.COMPLETED


def test_overlap_skip_across_two_workers_records_the_second_run_skipped(worker):
    # given a second worker, so both runs are picked up at once
    other = start_worker()
    try:
        job = handler_job("sleep", overlap_policy="skip", params={"seconds": 2})
        first, second = start(job), start(job)
        first, second = finished(first), finished(second)
    finally:
        other.stop()
    statuses = sorted([first.status, second.status])
    assert statuses == [ExecutionStatus.COMPLETED, ExecutionStatus.SKIPPED]
    skipped = first if first.status == ExecutionStatus.SKIPPED else second
    assert "overlap" in skipped.error
    assert skipped.attempts == 0
    workers = set(BatchAttempt.objects.filter(execution__job=job).values_list("worker", flat=True))
    assert len(workers) == 1


def test_overlap_queue_runs_the_second_after_the_first(worker):
    other = start_worker()
    try:
        job = handler_job("sleep", overlap_policy="queue", params={"seconds": 1})
        first, second = start(job), start(job)
        first, second = finished(first), finished(second)
    finally:
        other.stop()
    assert first.status == second.status == ExecutionStatus.COMPLETED
    earlier, later = sorted([first, second], key=lambda e: e.started_at)
    assert later.started_at >= earlier.finished_at


def test_each_execution_has_at_most_one_attempt_per_number(worker):
    executions = [start(handler_job("noop")) for _ in range(10)]
    for execution in executions:
        finished(execution)
    per_execution = (
        BatchAttempt.objects.values("execution").annotate(n=Count("id")).values_list("n", flat=True)
    )
    assert list(per_execution) == [1] * 10
