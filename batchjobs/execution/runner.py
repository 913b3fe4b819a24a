"""One attempt of one execution, from claim to recorded outcome. Called by the Celery task."""

import logging
import time
from contextlib import suppress

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

from batchjobs.models import AttemptStatus, BatchLog, ExecutionStatus
from batchjobs.models.job import JobKind
from batchjobs.models.set_aside import DATABASE_OUTAGES

from .attempt_log import attempt_log
from .batch_job import run_batch_job
from .dependencies import job_params_taken
from .handler_job import run_handler_job
from .heartbeat import heartbeat
from .http_job import run_http_job
from .lifecycle import (
    execution_attempt_recorded,
    execution_claim_within_limits,
    execution_finish_attempt,
)
from .outcome import AttemptOutcome
from .timeout import AttemptStopped, AttemptTimeout, cooperative, time_limit, timed_out_message

logger = logging.getLogger(__name__)


# An HTTP call keeps its own deadline and reports a clean TIMED_OUT, naming what it waited
# for; the limit behind it catches what the client cannot (a body trickling in, each read
# within the timeout). A signal comes a second later, leaving the client its turn; a
# greenlet's Timeout (the I/O lane) strikes only where the call waits, so it comes just past
# the deadline: such a call ends at its deadline there, not a second after it.
HTTP_SIGNAL_MARGIN = 1.0
HTTP_GREENLET_MARGIN = 0.1
# Recording an outcome through a database outage: first pause, and the longest.
RECORD_FIRST_PAUSE_SECONDS = 0.5
RECORD_MAX_PAUSE_SECONDS = 5.0


def execution_run(*, execution_id: int, worker: str, task_id: str) -> None:
    claimed_at = time.monotonic()
    claim = _claim(execution_id=execution_id, worker=worker, task_id=task_id)
    if claim is None:
        return
    execution, number = claim.execution, claim.attempt
    job = execution.job
    heartbeat.watch(execution.pk, number, interruptible=job.kind != JobKind.BATCH)
    try:
        if cooperative() and job.kind == JobKind.HTTP:
            # An I/O lane process: the call needs no database, so this greenlet's pooled
            # connection serves other claims and outcomes while the call is in flight.
            connections.close_all()
        with attempt_log(
            execution_id=execution.pk, attempt=number, job=job, params=execution.params
        ):
            outcome = _run_attempt(execution, attempt=number)
        # Still beating while the outcome is recorded, so that the reaper does not take the
        # attempt as lost while a database outage makes us wait; giving up a moment before
        # Celery's hard limit (timeout + grace, from the message's start) would kill us.
        hard_limit_at = (
            claimed_at + job.timeout_seconds + settings.BATCHJOBS_HARD_TIMEOUT_GRACE_SECONDS
        )
        status = _record_outcome(
            execution, attempt=number, outcome=outcome, give_up_at=hard_limit_at - 1.0
        )
    finally:
        heartbeat.unwatch(execution.pk)
    logger.info(
        "execution %s of %s attempt %s: %s -> %s",
        execution.pk,
        job.name,
        number,
        outcome.status,
        status or "no longer owned",
    )


def _claim(*, execution_id: int, worker: str, task_id: str):
    """The claim, made once more on a fresh connection if the database dropped the one it
    used: a server restart, a failover or pg_terminate_backend ends every idle session, and
    an I/O lane keeps a pool of them. Without this the message, already taken, would be
    lost until the relay resends it. The claim is a conditional update, so a second try
    after a first that landed finds the execution claimed and does nothing."""
    try:
        return execution_claim_within_limits(
            execution_id=execution_id, worker=worker, task_id=task_id
        )
    except DATABASE_OUTAGES:
        logger.warning("execution %s: the database dropped the connection; claiming again",
                       execution_id, exc_info=True)  # fmt: skip
        _close_connection()
        return execution_claim_within_limits(
            execution_id=execution_id, worker=worker, task_id=task_id
        )


def _record_outcome(
    execution: BatchLog, *, attempt: int, outcome: AttemptOutcome, give_up_at: float
) -> ExecutionStatus | None:
    """execution_finish_attempt, retried through a database outage (a restart, a failover)
    with a growing pause, for up to the heartbeat timeout (past it the reaper may take the
    attempt anyway) and not past `give_up_at` (time.monotonic()). A call that succeeded must
    not be made again because its outcome found the database away for a moment (DESIGN.md §4,
    invariant 3)."""
    job = execution.job
    pause = RECORD_FIRST_PAUSE_SECONDS
    give_up = min(give_up_at, time.monotonic() + settings.BATCHJOBS_HEARTBEAT_TIMEOUT_SECONDS)
    retried = False
    while True:
        try:
            status = execution_finish_attempt(
                execution=execution, attempt=attempt, outcome=outcome, job=job
            )
            if status is None and retried:
                # The earlier try may have committed and lost only its reply.
                status = execution_attempt_recorded(
                    execution=execution, attempt=attempt, outcome=outcome, job=job
                )
            return status
        except DATABASE_OUTAGES:
            left = give_up - time.monotonic()
            if left <= 0:
                raise
            logger.warning(
                "execution %s attempt %s: the database is away; recording its outcome again "
                "in %.1fs",
                execution.pk,
                attempt,
                min(pause, left),
                exc_info=True,
            )
            _close_connection()
            time.sleep(min(pause, left))
            pause = min(pause * 2, RECORD_MAX_PAUSE_SECONDS)
            retried = True


def _close_connection() -> None:
    """Drop this thread's broken connection; the next query opens a new one."""
    with suppress(DatabaseError):
        connections[DEFAULT_DB_ALIAS].close()


def _run_attempt(execution: BatchLog, *, attempt: int) -> AttemptOutcome:
    job = execution.job
    execution.params = job_params_taken(job, execution.params)
    deadline = time.monotonic() + job.timeout_seconds
    # A handler has no deadline of its own: the limit is its deadline.
    margin = 0.0
    if job.kind == JobKind.HTTP:
        margin = HTTP_GREENLET_MARGIN if cooperative() else HTTP_SIGNAL_MARGIN
    try:
        with time_limit(job.timeout_seconds + margin, execution_id=execution.pk):
            if job.kind == JobKind.HTTP:
                return run_http_job(
                    job, execution_id=execution.pk, attempt=attempt, deadline=deadline
                )
            if job.kind == JobKind.BATCH:
                return run_batch_job(execution, attempt=attempt)
            return run_handler_job(
                execution,
                attempt=attempt,
                deadline=deadline,
                report_progress=lambda done, total: heartbeat.progress(execution.pk, done, total),
            )
    except AttemptTimeout:
        _drop_interrupted_connections()
        # The job's timeout, not the limit's later one (an HTTP call's margin).
        return AttemptOutcome(
            status=AttemptStatus.TIMED_OUT,
            error=timed_out_message(job.timeout_seconds),
            retryable=True,
        )
    except AttemptStopped as exc:
        _drop_interrupted_connections()
        return AttemptOutcome(status=AttemptStatus.STOPPED, error=str(exc))


def _drop_interrupted_connections() -> None:
    """The limit may have struck inside a database call, leaving a connection mid-protocol:
    reconnect. A connection inside a transaction opened by our caller is the caller's to end."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()
