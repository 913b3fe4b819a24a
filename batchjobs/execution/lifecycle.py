"""Every status change of an execution: a conditional update from the expected status.

A message may be delivered twice, a worker may die mid-attempt, two beats may relay the same
execution: each transition below names the state it expects, and the loser of a race changes
nothing (DESIGN.md §4, invariants 2-5).
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce, Now

from batchjobs.models import AttemptStatus, BatchAttempt, BatchJob, BatchLog, ExecutionStatus
from batchjobs.models.execution import RUNNING_STATUSES
from batchjobs.models.job import OverlapPolicy
from batchjobs.scheduling.clock import database_now

from .outcome import AttemptOutcome
from .retry import retry_delay

# A queued run of an exclusive job that found another one running looks again this soon;
# the running one also hands over to it as soon as it finishes.
OVERLAP_RECHECK = timedelta(seconds=5)


@dataclass(frozen=True)
class Claim:
    execution: BatchLog
    attempt: BatchAttempt


def execution_claim(*, execution_id: int, worker: str, task_id: str) -> Claim | None:
    """QUEUED -> STARTED and a new RUNNING attempt, or None if this message has nothing to do
    (a duplicate, an early retry, an execution already finished, or an overlap)."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                claimed = BatchLog.objects.filter(
                    pk=execution_id,
                    status=ExecutionStatus.QUEUED,
                    next_attempt_at__lte=Now(),
                    attempts__lt=F("max_attempts"),
                ).update(
                    status=ExecutionStatus.STARTED,
                    attempts=F("attempts") + 1,
                    started_at=Coalesce(F("started_at"), Now()),
                    heartbeat_at=Now(),
                    worker=worker,
                )
        except IntegrityError:
            # execution_one_running_exclusive: another run of this exclusive job is running.
            _overlap_declined(execution_id)
            return None
        if not claimed:
            return None
        execution = BatchLog.objects.select_related("job").get(pk=execution_id)
        attempt = BatchAttempt.objects.create(
            execution=execution,
            number=execution.attempts,
            worker=worker,
            task_id=task_id,
            started_at=execution.heartbeat_at,
        )
    return Claim(execution=execution, attempt=attempt)


def _overlap_declined(execution_id: int) -> None:
    execution = BatchLog.objects.select_related("job").get(pk=execution_id)
    running = (
        BatchLog.objects.filter(job_id=execution.job_id, status__in=RUNNING_STATUSES)
        .values_list("pk", flat=True)
        .first()
    )
    queued = BatchLog.objects.filter(pk=execution_id, status=ExecutionStatus.QUEUED)
    if execution.job.overlap_policy == OverlapPolicy.SKIP:
        queued.update(
            status=ExecutionStatus.SKIPPED,
            finished_at=Now(),
            error=f"skipped by the overlap policy: execution #{running} of this job was running",
        )
    else:
        queued.update(next_attempt_at=database_now() + OVERLAP_RECHECK)


def execution_heartbeat(
    *, execution_id: int, attempt: int, progress: tuple[int, int | None] | None
) -> ExecutionStatus | None:
    """Mark the attempt alive. Returns the execution's status (STOPPING asks the attempt to
    end), or None if the attempt no longer owns the execution (reaped)."""
    fields = {"heartbeat_at": Now()}
    if progress is not None:
        fields["progress_done"], fields["progress_total"] = progress
    owned = BatchLog.objects.filter(pk=execution_id, status__in=RUNNING_STATUSES, attempts=attempt)
    if owned.filter(status=ExecutionStatus.STARTED).update(**fields):
        return ExecutionStatus.STARTED
    return ExecutionStatus.STOPPING if owned.update(**fields) else None


def execution_finish_attempt(
    *, execution: BatchLog, attempt: int, outcome: AttemptOutcome, job: BatchJob
) -> ExecutionStatus | None:
    """Record how attempt `attempt` ended and decide the execution's next state: COMPLETED,
    STOPPED (an operator asked), QUEUED again with a backoff, or FAILED. None if the attempt
    no longer owned the execution."""
    with transaction.atomic():
        current = (
            BatchLog.objects.select_for_update()
            .filter(pk=execution.pk, status__in=RUNNING_STATUSES, attempts=attempt)
            .values_list("status", flat=True)
            .first()
        )
        if current is None:
            return None
        now = database_now()
        update: dict = {"heartbeat_at": None, "error": outcome.error}
        if outcome.succeeded:
            update |= {"status": ExecutionStatus.COMPLETED, "finished_at": now,
                       "result": outcome.result}  # fmt: skip
        elif outcome.status == AttemptStatus.STOPPED or current == ExecutionStatus.STOPPING:
            update |= {"status": ExecutionStatus.STOPPED, "finished_at": now,
                       "error": outcome.error or "stopped by an operator"}  # fmt: skip
        elif outcome.retryable and attempt < execution.max_attempts:
            update |= {
                "status": ExecutionStatus.QUEUED,
                "next_attempt_at": now + retry_delay(job, failed_attempt=attempt),
            }
        else:
            update |= {"status": ExecutionStatus.FAILED, "finished_at": now}
        BatchLog.objects.filter(pk=execution.pk).update(**update)
        BatchAttempt.objects.filter(
            execution_id=execution.pk, number=attempt, status=AttemptStatus.RUNNING
        ).update(
            status=outcome.status,
            finished_at=now,
            http_status=outcome.http_status,
            response_excerpt=outcome.response_excerpt,
            error=outcome.error,
            retryable=None if outcome.succeeded else outcome.retryable,
        )
        if execution.exclusive:
            transaction.on_commit(lambda: _hand_over(job_id=execution.job_id))
    return update["status"]


def _hand_over(*, job_id: int) -> None:
    """An exclusive run ended: send the oldest run of the same job waiting for it now."""
    from .publish import executions_publish_or_defer

    waiting = (
        BatchLog.objects.filter(job_id=job_id, status=ExecutionStatus.QUEUED, exclusive=True)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:1]
    )
    if BatchLog.objects.filter(pk__in=list(waiting)).update(next_attempt_at=Now()):
        executions_publish_or_defer(list(waiting))


def executions_reap_lost(*, limit: int = 500) -> int:
    """Attempts whose heartbeat stopped (the worker died) end LOST; each execution is retried
    or FAILED by the same rule as any failed attempt. Returns how many were reaped."""
    cutoff = database_now() - timedelta(seconds=settings.BATCHJOBS_HEARTBEAT_TIMEOUT_SECONDS)
    stale = BatchLog.objects.select_related("job").filter(
        status__in=RUNNING_STATUSES, heartbeat_at__lt=cutoff
    )[:limit]
    reaped = 0
    for execution in stale:
        outcome = AttemptOutcome(
            status=AttemptStatus.LOST,
            error=(
                f"worker {execution.worker} stopped heartbeating during attempt "
                f"{execution.attempts} (last sign of life {execution.heartbeat_at:%H:%M:%S})"
            ),
            retryable=True,
        )
        if execution_finish_attempt(
            execution=execution, attempt=execution.attempts, outcome=outcome, job=execution.job
        ):
            reaped += 1
    return reaped


def executions_due_for_publish(*, limit: int = 1000) -> list[int]:
    """QUEUED executions that need a message now: a retry whose backoff is over, a run an
    overlap held back, or one whose message seems lost (not claimed within the relay delay).
    Marks them published, so concurrent relays split rather than double the work."""
    now = database_now()
    stale = now - timedelta(seconds=settings.BATCHJOBS_RELAY_AFTER_SECONDS)
    with transaction.atomic():
        due = list(
            BatchLog.objects.select_for_update(skip_locked=True)
            .filter(status=ExecutionStatus.QUEUED, next_attempt_at__lte=now)
            .filter(
                Q(published_at__isnull=True)
                | Q(published_at__lt=F("next_attempt_at"))
                | Q(published_at__lt=stale)
            )
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:limit]
        )
        if due:
            BatchLog.objects.filter(pk__in=due).update(published_at=now)
    return due
