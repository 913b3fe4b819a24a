"""Transitions and the database constraints behind invariants 1, 2, 5 and 6."""

import random
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from batchjobs.execution.lifecycle import (
    execution_claim,
    execution_stop_request,
    executions_due_for_publish,
    executions_reap_lost,
)
from batchjobs.execution.retry import retry_delay
from batchjobs.models import (
    AttemptStatus,
    BatchAttempt,
    BatchLog,
    BatchSchedule,
    ExecutionStatus,
    Trigger,
)
from tests.support.factories import handler_job, start

pytestmark = pytest.mark.django_db


def test_a_duplicate_message_claims_nothing():
    execution = start(handler_job("noop"))
    assert execution_claim(execution_id=execution.pk, worker="w1", task_id="a")
    assert execution_claim(execution_id=execution.pk, worker="w2", task_id="a") is None
    assert BatchAttempt.objects.filter(execution=execution).count() == 1


def test_a_queued_execution_stopped_by_an_operator_ends_with_its_end_time():
    execution = start(handler_job("noop"))

    change = execution_stop_request(execution_id=execution.pk)

    execution.refresh_from_db()
    assert change == (ExecutionStatus.QUEUED, ExecutionStatus.STOPPED)
    assert execution.status == ExecutionStatus.STOPPED
    assert execution.finished_at is not None  # it ended: durations and lists show when


def test_a_retry_is_not_claimed_before_its_backoff():
    execution = start(handler_job("noop"))
    BatchLog.objects.filter(pk=execution.pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5)
    )
    assert execution_claim(execution_id=execution.pk, worker="w", task_id="a") is None


def test_one_execution_per_fire_is_a_database_constraint():
    job = handler_job("noop")
    schedule = BatchSchedule.objects.create(job=job, kind="interval", interval_every=1)
    fire = timezone.now().replace(microsecond=0)
    BatchLog.objects.create(job=job, schedule=schedule, scheduled_for=fire, trigger="schedule")
    with pytest.raises(IntegrityError), transaction.atomic():
        BatchLog.objects.create(job=job, schedule=schedule, scheduled_for=fire, trigger="schedule")


def test_one_running_attempt_per_execution_is_a_database_constraint():
    execution = start(handler_job("noop"))
    BatchAttempt.objects.create(execution=execution, number=1, started_at=timezone.now())
    with pytest.raises(IntegrityError), transaction.atomic():
        BatchAttempt.objects.create(execution=execution, number=2, started_at=timezone.now())


def test_two_exclusive_runs_of_a_job_cannot_both_be_started():
    job = handler_job("noop", overlap_policy="queue")
    first, second = start(job), start(job)
    BatchLog.objects.filter(pk=first.pk).update(status=ExecutionStatus.STARTED)
    with pytest.raises(IntegrityError), transaction.atomic():
        BatchLog.objects.filter(pk=second.pk).update(status=ExecutionStatus.STARTED)


def test_attempts_can_never_exceed_max_attempts():
    execution = start(handler_job("noop", max_attempts=1))
    with pytest.raises(IntegrityError), transaction.atomic():
        BatchLog.objects.filter(pk=execution.pk).update(attempts=2)


def test_a_claim_past_max_attempts_is_refused():
    execution = start(handler_job("noop", max_attempts=1))
    BatchLog.objects.filter(pk=execution.pk).update(attempts=1)
    assert execution_claim(execution_id=execution.pk, worker="w", task_id="a") is None


def test_reaper_retries_a_silent_attempt_then_fails_it_at_max(settings):
    settings.BATCHJOBS_HEARTBEAT_TIMEOUT_SECONDS = 1
    execution = start(handler_job("noop", max_attempts=2))
    long_ago = timezone.now() - timedelta(minutes=1)

    execution_claim(execution_id=execution.pk, worker="w", task_id="a")
    BatchLog.objects.filter(pk=execution.pk).update(heartbeat_at=long_ago)
    assert executions_reap_lost() == 1
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.QUEUED
    assert "stopped heartbeating" in execution.error

    execution_claim(execution_id=execution.pk, worker="w", task_id="b")
    BatchLog.objects.filter(pk=execution.pk).update(heartbeat_at=long_ago)
    assert executions_reap_lost() == 1
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED
    statuses = list(execution.attempt_rows.values_list("status", flat=True))
    assert statuses == [AttemptStatus.LOST, AttemptStatus.LOST]


def test_a_live_heartbeat_is_not_reaped(settings):
    settings.BATCHJOBS_HEARTBEAT_TIMEOUT_SECONDS = 60
    execution = start(handler_job("noop"))
    execution_claim(execution_id=execution.pk, worker="w", task_id="a")
    assert executions_reap_lost() == 0


def test_relay_sends_due_retries_and_stale_messages_once(settings):
    settings.BATCHJOBS_RELAY_AFTER_SECONDS = 60
    job = handler_job("noop")
    fresh, retry, lost, later = (start(job) for _ in range(4))
    now = timezone.now()
    BatchLog.objects.filter(pk=retry.pk).update(
        published_at=now - timedelta(seconds=5), next_attempt_at=now - timedelta(seconds=1)
    )
    BatchLog.objects.filter(pk=lost.pk).update(published_at=now - timedelta(minutes=5))
    BatchLog.objects.filter(pk=later.pk).update(
        published_at=now - timedelta(seconds=5), next_attempt_at=now + timedelta(minutes=1)
    )
    assert sorted(executions_due_for_publish()) == sorted([retry.pk, lost.pk])
    assert executions_due_for_publish() == []


def test_relay_leaves_a_stale_message_alone_while_its_queue_has_a_backlog(settings):
    settings.BATCHJOBS_RELAY_AFTER_SECONDS = 60
    busy, idle = handler_job("noop", queue="busy"), handler_job("noop", queue="idle")
    busy_stale, busy_retry, idle_stale = start(busy), start(busy), start(idle)
    now = timezone.now()
    BatchLog.objects.filter(pk__in=[busy_stale.pk, idle_stale.pk]).update(
        published_at=now - timedelta(minutes=5), next_attempt_at=now - timedelta(minutes=5)
    )  # sent when due, five minutes ago, and not claimed since
    BatchLog.objects.filter(pk=busy_retry.pk).update(
        published_at=now - timedelta(minutes=5), next_attempt_at=now - timedelta(seconds=1)
    )
    due = executions_due_for_publish(backlogged_queues=["busy"])
    assert sorted(due) == sorted([busy_retry.pk, idle_stale.pk])  # a retry is due regardless
    assert executions_due_for_publish(backlogged_queues=["busy"]) == []
    assert executions_due_for_publish(backlogged_queues=[]) == [busy_stale.pk]  # drained


def test_retry_delay_doubles_caps_and_jitters_over_the_upper_half():
    job = handler_job(
        "noop", retry_backoff_seconds=10, retry_backoff_max_seconds=60, retry_jitter=False
    )
    delays = [retry_delay(job, failed_attempt=n).total_seconds() for n in range(1, 6)]
    assert delays == [10, 20, 40, 60, 60]
    job.retry_jitter = True
    rng = random.Random(7)
    jittered = [retry_delay(job, failed_attempt=3, rng=rng).total_seconds() for _ in range(200)]
    assert all(20 <= d <= 40 for d in jittered)
    assert max(jittered) - min(jittered) > 10


def test_manual_runs_have_no_fire_key():
    execution = start(handler_job("noop"))
    assert execution.trigger == Trigger.API
    assert execution.schedule_id is None and execution.scheduled_for is None
