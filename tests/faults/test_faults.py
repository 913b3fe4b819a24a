"""Fault scenarios of issue 7 with real worker and beat processes, PostgreSQL/SQLite and Redis,
and a local HTTP sink. Each ends with the invariant checker."""

import signal
import subprocess
import time

import pytest
from django.db import connection

from batchjobs.models import AttemptStatus, BatchLog, ExecutionStatus
from batchjobs.models.execution import FINAL_STATUSES
from tests.support.checker import check_invariants
from tests.support.engines import postgresql_only
from tests.support.factories import handler_job, http_job, start
from tests.support.processes import FAST_RECOVERY_ENV, start_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.integration]
QUEUE = "faults"
# Heartbeat timeout + housekeeping period + a loaded machine's slack.
RECOVERY_BOUND = float(FAST_RECOVERY_ENV["BATCHJOBS_HEARTBEAT_TIMEOUT_SECONDS"]) + 10


def ended(execution: BatchLog, timeout: float = 60) -> BatchLog:
    return wait_until(
        lambda: BatchLog.objects.filter(pk=execution.pk, status__in=FINAL_STATUSES).first(),
        timeout=timeout, message=f"execution {execution.pk} did not end",
    )  # fmt: skip


def all_ended(executions, timeout: float = 90) -> None:
    ids = [e.pk for e in executions]
    wait_until(
        lambda: BatchLog.objects.filter(pk__in=ids, status__in=FINAL_STATUSES).count() == len(ids),
        timeout=timeout, message="executions did not all end",
    )  # fmt: skip


def test_1_sigkill_mid_http_call_runs_one_more_attempt_with_the_same_key(beat, sink):
    first = start_worker(queues=QUEUE, concurrency=1)
    job = http_job(sink.url("/hang-first"), queue=QUEUE, timeout_seconds=60, max_attempts=3)
    execution = start(job)
    key = str(execution.pk)
    wait_until(lambda: sink.for_key(key), timeout=20)
    first.kill(signal.SIGKILL)
    killed = time.monotonic()
    first.stop()
    second = start_worker(queues=QUEUE, concurrency=1)
    try:
        done = ended(execution, timeout=RECOVERY_BOUND + 20)
        recovered_in = time.monotonic() - killed
    finally:
        second.stop()
    assert done.status == ExecutionStatus.COMPLETED
    assert list(done.attempt_rows.values_list("status", flat=True)) == [
        AttemptStatus.LOST, AttemptStatus.SUCCEEDED,
    ]  # fmt: skip
    assert [seen.attempt for seen in sink.for_key(key)] == ["1", "2"]
    assert recovered_in < RECOVERY_BOUND + 10
    check_invariants(sink=sink)


def test_2_a_killed_worker_with_reserved_messages_loses_nothing(beat):
    env = {"CELERY_VISIBILITY_TIMEOUT": "6", "CELERY_WORKER_PREFETCH_MULTIPLIER": "4"}
    first = start_worker(queues=QUEUE, concurrency=2, **env)
    job = handler_job("sleep", params={"seconds": 1}, queue=QUEUE, max_attempts=3)
    executions = [start(job) for _ in range(12)]
    wait_until(lambda: BatchLog.objects.filter(status=ExecutionStatus.STARTED).count() >= 2)
    first.kill(signal.SIGKILL)
    first.stop()
    second = start_worker(queues=QUEUE, concurrency=2, **env)
    try:
        all_ended(executions, timeout=90)
        time.sleep(10)  # past the visibility timeout: the old messages come back, and must no-op
    finally:
        second.stop()
    for execution in BatchLog.objects.filter(pk__in=[e.pk for e in executions]):
        assert execution.status == ExecutionStatus.COMPLETED
        statuses = list(execution.attempt_rows.values_list("status", flat=True))
        assert statuses.count(AttemptStatus.SUCCEEDED) == 1
        assert set(statuses) <= {AttemptStatus.SUCCEEDED, AttemptStatus.LOST}
    check_invariants()


def test_3_a_run_longer_than_the_visibility_timeout_calls_the_endpoint_once(sink):
    workers = [start_worker(queues=QUEUE, concurrency=2, CELERY_VISIBILITY_TIMEOUT="2")
               for _ in range(2)]  # fmt: skip
    try:
        execution = start(http_job(sink.url("/slow/8"), queue=QUEUE, timeout_seconds=30))
        done = ended(execution, timeout=40)
        time.sleep(3)
    finally:
        for worker in workers:
            worker.stop()
    assert done.status == ExecutionStatus.COMPLETED
    assert len(sink.for_key(str(execution.pk))) == 1
    check_invariants(sink=sink)


def test_4_a_backoff_longer_than_the_visibility_timeout_keeps_its_schedule(beat, sink):
    worker = start_worker(queues=QUEUE, concurrency=1, CELERY_VISIBILITY_TIMEOUT="2")
    try:
        job = http_job(sink.url("/fail/2"), queue=QUEUE, max_attempts=3,
                       retry_backoff_seconds=5, retry_backoff_max_seconds=60)  # fmt: skip
        execution = start(job)
        done = ended(execution, timeout=60)
    finally:
        worker.stop()
    assert done.status == ExecutionStatus.COMPLETED
    seen = sink.for_key(str(execution.pk))
    assert [s.attempt for s in seen] == ["1", "2", "3"]
    # on the clock the backoff is scheduled by (measured on the monotonic one, a retry was once
    # 1.4 ms "early" on the fresh-machine path)
    gaps = [
        later.arrived_at - earlier.arrived_at
        for earlier, later in zip(seen, seen[1:], strict=False)
    ]
    assert 5 <= gaps[0] <= 5 + 3, gaps  # base backoff, then doubled
    assert 10 <= gaps[1] <= 10 + 3, gaps
    check_invariants(sink=sink)


@postgresql_only("terminating the database's connections is a PostgreSQL operation")
def test_7_all_database_connections_killed_nothing_needs_a_restart(beat, sink):
    worker = start_worker(queues=QUEUE, concurrency=2)
    try:
        job = http_job(sink.url("/slow/0.5"), queue=QUEUE, max_attempts=5, retry_backoff_seconds=1)
        executions = [start(job) for _ in range(20)]
        wait_until(lambda: BatchLog.objects.filter(status=ExecutionStatus.COMPLETED).count() >= 3)
        with connection.cursor() as cursor:
            for _ in range(3):  # kill them again as they reconnect
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                time.sleep(0.5)
        all_ended(executions, timeout=90)
        # the same processes still work afterwards
        after = start(job)
        assert ended(after).status == ExecutionStatus.COMPLETED
    finally:
        worker.stop()
    assert all(e.status == ExecutionStatus.COMPLETED for e in BatchLog.objects.all())
    calls = [len(sink.for_key(str(e.pk))) for e in BatchLog.objects.all()]
    assert max(calls) <= 2, calls  # at most one repeat, where an outcome could not be recorded
    check_invariants(sink=sink)


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB."""
    output = subprocess.run(["ps", "-o", "rss=", "--ppid", str(pid), "-p", str(pid)],
                            capture_output=True, text=True).stdout  # fmt: skip
    return sum(int(line) for line in output.split()) / 1024


@pytest.mark.parametrize("path", ["/trickle", "/hang-first", "/huge", "/huge-undeclared", "/loop"])
def test_9_hostile_endpoints_end_within_the_timeout_and_free_the_slot(sink, path, settings):
    worker = start_worker(queues=QUEUE, concurrency=1)
    try:
        job = http_job(sink.url(path), queue=QUEUE, timeout_seconds=3, max_attempts=1)
        started = time.monotonic()
        execution = ended(start(job), timeout=30)
        took = (execution.finished_at - execution.started_at).total_seconds()
        peak = _tree_rss_mb(worker.popen.pid)
        # the slot is free again: a quick job runs at once
        follow = ended(start(handler_job("noop", queue=QUEUE)), timeout=15)
    finally:
        sink.release()
        worker.stop()
    assert execution.status == ExecutionStatus.FAILED
    assert took <= 3 + 2, f"{path}: the attempt took {took:.1f}s"
    assert time.monotonic() - started < 30
    assert peak < 600, f"worker tree at {peak:.0f} MB"  # a 200 MB body must not be held
    assert follow.status == ExecutionStatus.COMPLETED
    check_invariants(sink=sink)


def test_8_a_job_that_kills_its_worker_fails_while_others_flow(beat):
    worker = start_worker(queues=QUEUE, concurrency=2)
    try:
        killer = start(handler_job("tests.kill_worker", queue=QUEUE, max_attempts=2))
        others = [start(handler_job("noop", queue=QUEUE)) for _ in range(10)]
        all_ended(others, timeout=60)
        dead = ended(killer, timeout=RECOVERY_BOUND * 3)
    finally:
        worker.stop()
    assert dead.status == ExecutionStatus.FAILED and dead.attempts == 2
    assert all(BatchLog.objects.get(pk=o.pk).status == ExecutionStatus.COMPLETED for o in others)
    check_invariants()
