"""Job dependencies through real worker and beat processes: a downstream run survives its
upstream's worker being SIGKILLed, and runs exactly once (DESIGN.md §4, invariant 13)."""

import signal
import time

import pytest

from batchjobs.models import BatchLog, ExecutionStatus, Trigger
from batchjobs.models.execution import FINAL_STATUSES
from batchjobs.services.dependencies import dependency_create
from tests.support.factories import handler_job, start
from tests.support.processes import (
    FAST_RECOVERY_ENV,
    queue_purge,
    start_worker,
    wait_until,
)

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.integration]
UP, DOWN = "deps-up", "deps-down"
# The relay resends a lost message after this long; the reaper takes a dead attempt after the
# heartbeat timeout: the downstream runs are due within both, with room for a loaded machine.
RECOVERY_BOUND = (
    float(FAST_RECOVERY_ENV["BATCHJOBS_RELAY_AFTER_SECONDS"])
    + float(FAST_RECOVERY_ENV["BATCHJOBS_HEARTBEAT_TIMEOUT_SECONDS"])
    + 30
)


def test_downstream_runs_survive_a_killed_worker_and_run_once(beat):
    # given: an upstream that completes and one that kills its worker, each with a downstream
    # job on a queue the first worker does not consume
    extract = handler_job("noop", queue=UP, max_attempts=1)
    crash = handler_job("tests.kill_worker", queue=UP, max_attempts=1)
    load = handler_job("noop", queue=DOWN)
    cleanup = handler_job("noop", queue=DOWN)
    dependency_create(upstream=extract, downstream=load, condition="success")
    dependency_create(upstream=crash, downstream=cleanup, condition="failure")
    first = start_worker(queues=UP)
    try:
        # when the upstream's end commits, its worker is SIGKILLed at once
        upstream = start(extract)
        ended = wait_until(
            lambda: BatchLog.objects.filter(pk=upstream.pk, status__in=FINAL_STATUSES).first(),
            timeout=30, interval=0.02, message="the upstream did not end",
        )  # fmt: skip
        first.kill(signal.SIGKILL)
        # then its downstream run committed with it: no moment exists between the two
        assert ended.status == ExecutionStatus.COMPLETED
        assert BatchLog.objects.filter(triggered_by=ended).count() == 1
    finally:
        first.stop()
    # The killed worker may have sent the downstream's message or not; drop it if it did, which
    # leaves what a kill just before the send leaves: the row, and no message.
    queue_purge(DOWN)

    second = start_worker(queues=f"{UP},{DOWN}")
    try:
        # and an upstream whose worker dies mid-run: the reaper ends it FAILED (one attempt)
        crashed = start(crash)
        load_run = wait_until(
            lambda: BatchLog.objects.filter(job=load, status__in=FINAL_STATUSES).first(),
            timeout=RECOVERY_BOUND, message="the downstream of the completed run did not run",
        )  # fmt: skip
        cleanup_run = wait_until(
            lambda: BatchLog.objects.filter(job=cleanup, status__in=FINAL_STATUSES).first(),
            timeout=RECOVERY_BOUND, message="the downstream of the crashed run did not run",
        )  # fmt: skip
        time.sleep(2)  # a duplicate start or a second run would show by now
    finally:
        second.stop()

    crashed.refresh_from_db()
    assert crashed.status == ExecutionStatus.FAILED
    for run, upstream_run in ((load_run, ended), (cleanup_run, crashed)):
        assert run.status == ExecutionStatus.COMPLETED, run.error
        assert run.trigger == Trigger.DEPENDENCY
        assert run.triggered_by_id == upstream_run.pk
        assert run.attempt_rows.count() == 1
    assert BatchLog.objects.filter(job=load).count() == 1
    assert BatchLog.objects.filter(job=cleanup).count() == 1
