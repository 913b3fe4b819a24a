"""Batch jobs through real workers: stop and restart, a killed worker, partitions across
workers, and stop of handler and HTTP jobs."""

import threading
import time

import pytest
from werkzeug import Response

from batchjobs.models import AttemptStatus, BatchLog, ExecutionStatus, StepExecution
from batchjobs.services import operator
from tests.support.batch_jobs import customer_numbers
from tests.support.factories import handler_job, http_job, start
from tests.support.processes import start_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.integration]
FINAL = (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.STOPPED)


def ended(execution_id: int, timeout: float = 60) -> BatchLog:
    return wait_until(
        lambda: BatchLog.objects.filter(pk=execution_id, status__in=FINAL).first(),
        timeout=timeout,
        message=f"execution {execution_id} did not end",
    )


def load_step(execution_id: int) -> StepExecution:
    return StepExecution.objects.get(execution_id=execution_id, step_name="load", partition="")


@pytest.mark.parametrize("job", ["tests.numbers", "tests.copied_numbers_overlapped"])
def test_stop_during_a_chunk_step_then_restart_writes_every_item_once(worker, job):
    # given a slow import: 200 items, 5 per chunk, 20 ms per item (the second job reads each
    # chunk while the one before is written: a stop must discard what it read ahead)
    execution = operator.job_start(job_name=job, params={"run": 1, "count": 200, "delay": 0.02})
    wait_until(
        lambda: (
            load_step(execution.pk).commit_count >= 3
            if StepExecution.objects.filter(execution_id=execution.pk, step_name="load").exists()
            else False
        ),
        timeout=30,
    )
    # when stopped mid-step
    operator.execution_stop(execution_id=execution.pk)
    stopped = ended(execution.pk)
    # then it ends STOPPED at a chunk boundary with what it committed, and nothing more
    assert stopped.status == ExecutionStatus.STOPPED
    first_load = load_step(execution.pk)
    assert first_load.status == ExecutionStatus.STOPPED
    written = customer_numbers()
    assert written == list(range(1, first_load.write_count + 1))
    assert first_load.write_count % 5 == 0 and 0 < first_load.write_count < 200
    # when restarted, it resumes after the last committed chunk
    restarted = ended(operator.execution_restart(execution_id=execution.pk).pk)
    assert restarted.status == ExecutionStatus.COMPLETED, restarted.error
    assert customer_numbers() == list(range(1, 201))  # every item exactly once
    assert load_step(restarted.pk).write_count == 200 - first_load.write_count


def test_killing_the_worker_mid_chunk_resumes_from_the_last_committed_chunk(worker, beat):
    # given a second worker that takes the job, then dies mid-step
    victim = start_worker(queues="victim", concurrency=1)
    job = operator._job("tests.numbers")
    job.queue, job.max_attempts = "victim", 1
    job.save()
    try:
        execution = operator.job_start(
            job_name="tests.numbers", params={"run": 2, "count": 300, "delay": 0.02}
        )
        wait_until(lambda: StepExecution.objects.filter(execution_id=execution.pk,
                   step_name="load", commit_count__gte=4).exists(), timeout=30)  # fmt: skip
        victim.kill()
    finally:
        victim.stop()
    # the reaper declares the attempt lost; with one attempt allowed, the execution fails
    failed = ended(execution.pk, timeout=30)
    assert failed.status == ExecutionStatus.FAILED
    assert failed.attempt_rows.get().status == AttemptStatus.LOST
    committed = customer_numbers()
    assert committed == list(range(1, len(committed) + 1))
    # when restarted on the healthy worker
    job.queue = "batchjobs"
    job.save()
    restarted = ended(operator.execution_restart(execution_id=execution.pk).pk)
    assert restarted.status == ExecutionStatus.COMPLETED, restarted.error
    assert customer_numbers() == list(range(1, 301))


def test_a_partitioned_step_runs_on_two_workers(worker):
    other = start_worker(concurrency=2)
    try:
        execution = operator.job_start(
            job_name="tests.partitioned", params={"count": 400, "delay": 0.005}
        )
        done = ended(execution.pk)
    finally:
        other.stop()
    assert done.status == ExecutionStatus.COMPLETED, done.error
    assert customer_numbers() == list(range(1, 401))
    partitions = StepExecution.objects.filter(execution=done).exclude(partition="")
    assert partitions.count() == 4
    assert set(partitions.values_list("status", flat=True)) == {ExecutionStatus.COMPLETED}


def test_restart_of_a_partitioned_step_reruns_only_unfinished_partitions(worker):
    # p2 holds 201..300; number 250 fails it (no skip policy on the partition step)
    execution = operator.job_start(
        job_name="tests.partitioned", params={"count": 400, "bad": [250]}
    )
    failed = ended(execution.pk)
    assert failed.status == ExecutionStatus.FAILED
    statuses = dict(StepExecution.objects.filter(execution=failed).exclude(partition="")
                    .values_list("partition", "status"))  # fmt: skip
    assert statuses["p2"] == ExecutionStatus.FAILED
    completed = {name for name, status in statuses.items() if status == ExecutionStatus.COMPLETED}
    assert completed == {"p0", "p1", "p3"}
    # the restart runs p2 alone (it fails again at 250: same parameters), p0, p1, p3 untouched
    restarted = ended(operator.execution_restart(execution_id=failed.pk).pk)
    rerun = StepExecution.objects.filter(execution=restarted).exclude(partition="")
    assert dict(rerun.values_list("partition", "status"))["p2"] == ExecutionStatus.FAILED
    assert rerun.get(partition="p2").read_count == 0  # resumed at its checkpoint
    assert rerun.filter(status=ExecutionStatus.COMPLETED).count() == 3
    # p2 committed 201..240 (four chunks of 10) before the chunk holding 250 failed
    assert customer_numbers() == sorted(set(range(1, 241)) | set(range(301, 401)))


def test_stop_cancels_a_running_handler_job(worker):
    execution = start(handler_job("sleep", params={"seconds": 60}, timeout_seconds=120))
    wait_until(lambda: BatchLog.objects.filter(pk=execution.pk, status="STARTED").exists())
    time.sleep(0.5)
    asked = time.monotonic()
    operator.execution_stop(execution_id=execution.pk)
    stopped = ended(execution.pk, timeout=20)
    assert stopped.status == ExecutionStatus.STOPPED
    assert stopped.attempt_rows.get().status == AttemptStatus.STOPPED
    assert time.monotonic() - asked < 5  # heartbeat period + the interrupt, not 60 s


def test_stop_cancels_a_running_http_call(worker, httpserver):
    # The shared test server answers one request at a time: the hang ends with the test, so
    # that it does not hold the next test's requests.
    test_over = threading.Event()

    def hang(request):
        test_over.wait(20)
        return Response("late")

    httpserver.expect_request("/hang").respond_with_handler(hang)
    try:
        execution = start(http_job(httpserver.url_for("/hang"), timeout_seconds=60))
        wait_until(lambda: BatchLog.objects.filter(pk=execution.pk, status="STARTED").exists())
        operator.execution_stop(execution_id=execution.pk)
        stopped = ended(execution.pk, timeout=20)
    finally:
        test_over.set()
    assert stopped.status == ExecutionStatus.STOPPED
