"""Issue 11, execution side: rows written behind validation's back never stop the reaper, the
success path computes no backoff, a retry is not skipped by the overlap policy, and a
hand-over never cuts a retry's backoff short."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from batchjobs.execution.lifecycle import (
    OVERLAP_RECHECK,
    execution_attempt_recorded,
    execution_claim,
    execution_finish_attempt,
    executions_reap_lost,
)
from batchjobs.execution.outcome import AttemptOutcome
from batchjobs.execution.retry import retry_delay
from batchjobs.models import AttemptStatus, BatchJob, BatchLog, ExecutionStatus
from batchjobs.rules.bounds import MAX_BACKOFF_SECONDS
from tests.support.factories import handler_job, http_job, start
from tests.support.runs import run_in_process

pytestmark = pytest.mark.django_db
# A queue no worker reads: a worker another test started must not take these runs, whose
# messages the transactional tests publish for real.
QUEUE = "test-recovery"

FAILED_503 = AttemptOutcome(
    status=AttemptStatus.FAILED, error="HTTP 503", retryable=True, http_status=503
)


def _raw_sql(sql: str, params: list) -> None:
    """Write behind validation's back, as a hand-edited row or an older release would."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _set_backoff(job: BatchJob, seconds: float) -> None:
    _raw_sql(
        f"UPDATE {BatchJob._meta.db_table} SET retry_backoff_seconds = %s, "
        "retry_backoff_max_seconds = %s WHERE id = %s",
        [seconds, seconds, job.pk],
    )


def _stale_started(job: BatchJob) -> BatchLog:
    """An execution whose worker died mid-attempt: STARTED, its heartbeat long stopped."""
    execution = start(job)
    assert execution_claim(execution_id=execution.pk, worker="dead", task_id="t")
    BatchLog.objects.filter(pk=execution.pk).update(
        heartbeat_at=timezone.now() - timedelta(minutes=5)
    )
    return execution


@pytest.mark.parametrize("backoff", [float("inf"), float("nan"), 1e308, -1.0])
def test_retry_delay_of_a_stored_value_past_the_bounds_is_bounded(backoff):
    # as loaded from a row written behind validation's back (SQLite cannot store NaN)
    job = BatchJob(
        retry_backoff_seconds=backoff, retry_backoff_max_seconds=backoff, retry_jitter=False
    )
    expected = timedelta(seconds=0 if backoff < 0 else MAX_BACKOFF_SECONDS)
    for attempt in (1, 2, 99):
        assert retry_delay(job, failed_attempt=attempt) == expected


def test_one_reaper_pass_reaps_every_good_row_and_sets_the_poison_aside(settings):
    settings.BATCHJOBS_HEARTBEAT_TIMEOUT_SECONDS = 1
    # given: stale executions of a good job
    good = [_stale_started(handler_job("noop", queue=QUEUE, max_attempts=3)) for _ in range(3)]
    # and one of a job whose backoff was set to infinity behind validation's back
    huge = handler_job("noop", queue=QUEUE, max_attempts=3)
    _set_backoff(huge, float("inf"))
    huge_run = _stale_started(huge)
    # and one that cannot even be read: a heartbeat at minus infinity
    unreadable = _stale_started(handler_job("noop", queue=QUEUE, max_attempts=3))
    _raw_sql(
        f"UPDATE {BatchLog._meta.db_table} SET heartbeat_at = '-infinity' WHERE id = %s",
        [unreadable.pk],
    )

    # when: one pass
    reaped = executions_reap_lost()

    # then: every good row is reaped and queued for its retry
    assert reaped == 4
    for execution in [*good, huge_run]:
        execution.refresh_from_db()
        assert execution.status == ExecutionStatus.QUEUED
        assert execution.attempt_rows.get().status == AttemptStatus.LOST
        assert execution.set_aside_at is None
    # the infinite backoff waits the longest backoff there is, no longer
    wait = huge_run.next_attempt_at - huge_run.attempt_rows.get().finished_at
    assert wait == timedelta(seconds=MAX_BACKOFF_SECONDS)
    # the unreadable row is set aside, its error on view, and no later pass meets it again
    aside = BatchLog.objects.filter(pk=unreadable.pk).values(
        "status", "error", "set_aside_at", "set_aside_reason", "heartbeat_at"
    )[0]
    assert aside["status"] == ExecutionStatus.FAILED
    assert aside["set_aside_at"] is not None
    assert aside["set_aside_reason"]  # what loading the row raised
    assert "set aside by the reaper" in aside["error"]
    assert aside["heartbeat_at"] is None
    assert unreadable.attempt_rows.get().status == AttemptStatus.LOST
    assert executions_reap_lost() == 0


@pytest.mark.parametrize("backoff", [1e308, float("inf")])
def test_a_job_with_a_huge_backoff_completes_normally(backoff):
    job = handler_job("noop", queue=QUEUE, max_attempts=3)
    _set_backoff(job, backoff)
    execution = start(job)

    execution = run_in_process(execution)

    assert execution.status == ExecutionStatus.COMPLETED
    assert list(execution.attempt_rows.values_list("status", flat=True)) == [
        AttemptStatus.SUCCEEDED
    ]


# transaction=True: a claim that meets the exclusive constraint raises outside any atomic block,
# as in a worker.
@pytest.mark.django_db(transaction=True)
def test_a_retry_of_a_skip_job_waits_for_the_overlap_instead_of_being_skipped():
    job = handler_job("noop", queue=QUEUE, overlap_policy="skip", max_attempts=3)
    # given: a run whose first attempt was lost, queued for its retry
    retried = _stale_started(job)
    BatchLog.objects.filter(pk=retried.pk).update(heartbeat_at=None)
    lost = AttemptOutcome(status=AttemptStatus.LOST, error="worker died", retryable=True)
    assert execution_finish_attempt(execution=retried, attempt=1, outcome=lost, job=job)
    # and a newer run of the job that is running now
    newer = start(job)
    assert execution_claim(execution_id=newer.pk, worker="w", task_id="n")
    fresh = start(job)

    # when: the retry and a fresh run are delivered while the newer one runs
    before = timezone.now()
    assert execution_claim(execution_id=retried.pk, worker="w", task_id="r") is None
    assert execution_claim(execution_id=fresh.pk, worker="w", task_id="f") is None

    # then: the retry waits its turn, the fresh run is skipped as the policy says
    retried.refresh_from_db()
    assert retried.status == ExecutionStatus.QUEUED
    assert retried.next_attempt_at >= before + OVERLAP_RECHECK - timedelta(seconds=1)
    fresh.refresh_from_db()
    assert fresh.status == ExecutionStatus.SKIPPED


@pytest.mark.parametrize("policy", ["allow", "skip", "queue"])
def test_a_failed_run_keeps_its_backoff_whatever_its_overlap_policy(
    policy, httpserver, django_capture_on_commit_callbacks
):
    httpserver.expect_request("/busy").respond_with_data("busy", status=503)
    job = http_job(
        httpserver.url_for("/busy"), queue=QUEUE, overlap_policy=policy, max_attempts=3,
        retry_backoff_seconds=30, retry_backoff_max_seconds=300, retry_jitter=False,
    )  # fmt: skip
    execution = start(job)

    # hand-overs run as they would after the worker's commit
    with django_capture_on_commit_callbacks(execute=True):
        run_in_process(execution, task_id="a")
        run_in_process(execution, task_id="b")  # redelivered at once

    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.QUEUED
    failed = execution.attempt_rows.get()  # attempt 2 was not claimable before its backoff
    assert failed.http_status == 503
    assert execution.next_attempt_at - failed.finished_at == timedelta(seconds=30)
    assert len(httpserver.log) == 1


@pytest.mark.django_db(transaction=True)
def test_a_hand_over_wakes_a_waiting_run_but_not_one_in_its_backoff():
    job = handler_job(
        "noop", queue=QUEUE, overlap_policy="queue", max_attempts=3, retry_backoff_seconds=30,
        retry_backoff_max_seconds=300, retry_jitter=False,
    )  # fmt: skip
    # given: a run in its retry backoff, a run waiting for the overlap, and the running one
    in_backoff = start(job)
    claim = execution_claim(execution_id=in_backoff.pk, worker="w", task_id="a")
    execution_finish_attempt(execution=claim.execution, attempt=1, outcome=FAILED_503, job=job)
    running = start(job)
    running_claim = execution_claim(execution_id=running.pk, worker="w", task_id="b")
    waiting = start(job)
    assert execution_claim(execution_id=waiting.pk, worker="w", task_id="c") is None
    waiting.refresh_from_db()
    assert waiting.next_attempt_at > timezone.now()  # held back by the overlap
    in_backoff.refresh_from_db()
    backoff_until = in_backoff.next_attempt_at

    # when: the running one ends (autocommit: its hand-over runs at once)
    execution_finish_attempt(
        execution=running_claim.execution,
        attempt=1,
        outcome=AttemptOutcome(status=AttemptStatus.SUCCEEDED),
        job=job,
    )

    # then: the waiting run is due now; the one in its backoff still waits for it
    waiting.refresh_from_db()
    assert waiting.next_attempt_at <= timezone.now()
    in_backoff.refresh_from_db()
    assert in_backoff.next_attempt_at == backoff_until


@pytest.mark.django_db(transaction=True)
def test_a_hand_over_wakes_a_retry_the_overlap_held_back_after_its_backoff():
    job = handler_job(
        "noop", queue=QUEUE, overlap_policy="skip", max_attempts=3, retry_backoff_seconds=30,
        retry_backoff_max_seconds=300, retry_jitter=False,
    )  # fmt: skip
    # given: a run whose first attempt failed a minute ago: its 30 s backoff is over
    held = start(job)
    claim = execution_claim(execution_id=held.pk, worker="w", task_id="a")
    execution_finish_attempt(execution=claim.execution, attempt=1, outcome=FAILED_503, job=job)
    a_minute_ago = timezone.now() - timedelta(minutes=1)
    held.attempt_rows.update(finished_at=a_minute_ago)
    BatchLog.objects.filter(pk=held.pk).update(next_attempt_at=a_minute_ago)
    # and a newer run running when the retry is delivered: the overlap holds the retry back
    running = start(job)
    running_claim = execution_claim(execution_id=running.pk, worker="w", task_id="b")
    assert execution_claim(execution_id=held.pk, worker="w", task_id="c") is None
    held.refresh_from_db()
    assert held.status == ExecutionStatus.QUEUED
    assert held.next_attempt_at > timezone.now()

    # when: the running one ends
    execution_finish_attempt(
        execution=running_claim.execution,
        attempt=1,
        outcome=AttemptOutcome(status=AttemptStatus.SUCCEEDED),
        job=job,
    )

    # then: the retry is sent at once, not at its next recheck
    held.refresh_from_db()
    assert held.next_attempt_at <= timezone.now()


def test_a_finish_repeated_after_a_lost_reply_is_known_as_ours():
    job = handler_job("noop", queue=QUEUE)
    claim = execution_claim(execution_id=start(job).pk, worker="w", task_id="a")
    succeeded = AttemptOutcome(status=AttemptStatus.SUCCEEDED, result={"ok": True})
    finish = {"execution": claim.execution, "attempt": 1, "outcome": succeeded, "job": job}
    assert execution_finish_attempt(**finish) == ExecutionStatus.COMPLETED

    # the same finish again, as after a commit whose reply the outage swallowed
    assert execution_finish_attempt(**finish) is None
    assert execution_attempt_recorded(**finish) == ExecutionStatus.COMPLETED


def test_an_attempt_the_reaper_took_is_not_taken_for_ours(settings):
    settings.BATCHJOBS_HEARTBEAT_TIMEOUT_SECONDS = 1
    job = handler_job("noop", queue=QUEUE, max_attempts=2)
    execution = _stale_started(job)
    assert executions_reap_lost() == 1
    succeeded = AttemptOutcome(status=AttemptStatus.SUCCEEDED)
    finish = {"execution": execution, "attempt": 1, "outcome": succeeded, "job": job}
    assert execution_finish_attempt(**finish) is None
    assert execution_attempt_recorded(**finish) is None
