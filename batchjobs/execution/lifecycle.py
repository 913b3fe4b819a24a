"""Every status change of an execution: a conditional update from the expected status.

A message may be delivered twice, a worker may die mid-attempt, two beats may relay the same
execution: each transition below names the state it expects, and the loser of a race changes
nothing (DESIGN.md §4, invariants 2-5).
"""

import json
import logging
from collections.abc import Collection, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, JSONField, Max, OuterRef, Q
from django.db.models.expressions import RawSQL
from django.db.models.functions import Now
from django.utils.translation import gettext

from batchjobs.batch.repository import COUNTERS
from batchjobs.errors import Conflict
from batchjobs.models import (
    AttemptStatus,
    BatchAttempt,
    BatchJob,
    BatchLog,
    ExecutionStatus,
    JobDependency,
    JobNotification,
    OccurrenceOutcome,
    ScheduleOccurrence,
    StepExecution,
)
from batchjobs.models.clock import database_now
from batchjobs.models.execution import (
    ACTIVE_STATUSES,
    RESTARTABLE_STATUSES,
    RUNNING_STATUSES,
    STEP_DONE_STATUSES,
)
from batchjobs.models.job import OverlapPolicy
from batchjobs.models.set_aside import row_isolated, set_aside_reason

from .dependencies import ENDS_THAT_START, dependents_start
from .hooks import execution_ended
from .hot_sql import (
    ATTEMPT_INSERT,
    CLAIM_GATED_POSTGRESQL,
    CLAIM_POSTGRESQL,
    CLAIM_UPDATE,
    CLAIMED_FIELDS,
    FINISH_ATTEMPT,
    FINISH_EXECUTION,
    HEARTBEAT_MANY,
    attempt_values,
)
from .limits import (
    HELD_RECHECK_SECONDS,
    Limit,
    execution_limits,
    held_for_a_slot,
    held_recheck,
    held_wake_after_run,
    job_limits,
    rate_admit,
    rate_pace_call,
    slot_reason_sql_format,
    slots_look_full,
)
from .outcome import AttemptOutcome
from .retry import retry_delay
from .timeout import stopped_message

# A queued run of an exclusive job that found another one running looks again this soon;
# the running one also hands over to it as soon as it finishes.
OVERLAP_RECHECK = timedelta(seconds=5)
# How many of the oldest waiting runs a hand-over looks through for one to send.
HAND_OVER_CANDIDATES = 20

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    """What a run needs: the execution (id, job, params, context, attempt count) and the
    number of the attempt it now owns."""

    execution: BatchLog
    attempt: int


def execution_claim(*, execution_id: int, worker: str, task_id: str) -> Claim | None:
    """QUEUED -> STARTED and a new RUNNING attempt, or None if this message has nothing to do
    (a duplicate, an early retry, an execution already finished, or an overlap).

    The hot path of every run: one statement on PostgreSQL (the UPDATE and the attempt's
    INSERT in one data-modifying CTE), two in one transaction elsewhere."""
    try:
        row = _claim_row(execution_id=execution_id, worker=worker, task_id=task_id)
    except IntegrityError:
        # execution_one_running_exclusive: another run of this exclusive job is running.
        _overlap_declined(execution_id)
        return None
    if row is None:
        return None
    return _claim_from_row(row)


def _claim_from_row(row) -> Claim:
    """The Claim of a claim statement's row: the claimed columns, then the job's updated_at."""
    *claimed, job_updated_at = row
    values = dict(zip(CLAIMED_FIELDS, claimed, strict=True))
    for name in ("params", "execution_context"):
        values[name] = _json_from_db(name, values[name])
    values["heartbeat_at"] = _datetime_from_db(values["heartbeat_at"])
    execution = BatchLog(**values)
    execution.job = job_cached(values["job_id"], updated_at=job_updated_at)
    return Claim(execution=execution, attempt=execution.attempts)


def execution_claim_within_limits(*, execution_id: int, worker: str, task_id: str) -> Claim | None:
    """execution_claim, once every limit that applies to the execution's job has room (see
    limits.py); None also when a limit holds it QUEUED, its reason on view. Under a rate, the
    claimed call's start is then paced, the last step before the call. Costs nothing more
    than execution_claim while no limit applies."""
    applying = execution_limits(execution_id)
    if applying is None:
        return None  # deleted
    if not applying:
        return execution_claim(execution_id=execution_id, worker=worker, task_id=task_id)
    if connection.vendor == "postgresql" and any(
        limit.max_running is not None for limit in applying
    ):
        return _claim_gated_postgresql(
            execution_id=execution_id, worker=worker, task_id=task_id, limits=applying
        )
    # SQLite, or a rate alone.
    paced = any(limit.max_per_second is not None for limit in applying)
    if paced:
        # A run the slots hold takes no start from the rate: 40 runs of a host of 4 at once
        # and 10 a second took 9.7 s when each run held for a slot had spent a start first
        # (5.9 s now). Counted without the lock (every claim of the host waits for it) unless
        # the slots look full; one taken during the rate's wait still holds the run below.
        if slots_look_full(applying):
            with transaction.atomic():
                held = held_for_a_slot(execution_id=execution_id, limits=applying)
            if held is not None:
                held_recheck(execution_id=execution_id, limit=held)
                return None
        if not rate_admit(execution_id=execution_id, limits=applying):
            return None
    if not any(limit.max_running is not None for limit in applying):
        # A rate alone: the claim is one statement, with no count to make under a lock (a
        # transaction around it left the lane's sessions idle in it 25% of the time).
        claim = execution_claim(execution_id=execution_id, worker=worker, task_id=task_id)
        if claim is not None:
            rate_pace_call(applying)
        return claim
    claim = None
    with transaction.atomic():
        held = held_for_a_slot(execution_id=execution_id, limits=applying)
        if held is None:
            claim = execution_claim(execution_id=execution_id, worker=worker, task_id=task_id)
    if held is not None:
        held_recheck(execution_id=execution_id, limit=held)
    elif claim is not None and paced:
        rate_pace_call(applying)
    return claim


def _claim_gated_postgresql(
    *, execution_id: int, worker: str, task_id: str, limits: list[Limit]
) -> Claim | None:
    """execution_claim_within_limits on PostgreSQL when a limit on runs at once applies: the
    count and the claim (or the hold) in one statement each, under the limits' locks only
    while the server runs it (CLAIM_GATED_POSTGRESQL; see migration 0011 for why)."""
    if any(limit.max_per_second is not None for limit in limits):
        # A run the slots hold takes no start from the rate (it would spend one for nothing).
        held, _ = _gate_postgresql(execution_id=execution_id, worker=worker, task_id=task_id,
                                   limits=limits, claim=False)  # fmt: skip
        if held or not rate_admit(execution_id=execution_id, limits=limits):
            return None
    # A slot taken during the rate's wait still holds the run here.
    _, claim = _gate_postgresql(
        execution_id=execution_id, worker=worker, task_id=task_id, limits=limits, claim=True
    )
    if claim is not None and any(limit.max_per_second is not None for limit in limits):
        rate_pace_call(limits)
    return claim


def _gate_postgresql(
    *, execution_id: int, worker: str, task_id: str, limits: list[Limit], claim: bool
) -> tuple[bool, Claim | None]:
    """One CLAIM_GATED_POSTGRESQL: (True, None) if a full limit now holds the execution; else
    (False, the claim), the claim None when `claim` is False or there was nothing to claim."""
    slots = sorted(
        (limit for limit in limits if limit.max_running is not None), key=lambda limit: limit.key
    )
    params: dict[str, Any] = {
        "keys": [limit.key for limit in slots], "labels": [limit.label for limit in slots],
        "reason_format": slot_reason_sql_format(), "claim": claim, "id": execution_id,
        "worker": worker, "task_id": task_id, "recheck": HELD_RECHECK_SECONDS,
    }  # fmt: skip
    try:
        with connection.cursor() as cursor:
            cursor.execute(CLAIM_GATED_POSTGRESQL, params)
            verdict, *claimed, _held = cursor.fetchone()
    except IntegrityError:
        # execution_one_running_exclusive: another run of this exclusive job is running.
        _overlap_declined(execution_id)
        return False, None
    if verdict is not None:
        return True, None
    if claimed[0] is None:
        return False, None
    return False, _claim_from_row(claimed)


def _claim_row(*, execution_id: int, worker: str, task_id: str):
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(CLAIM_POSTGRESQL, [worker, execution_id, worker, task_id])
            return cursor.fetchone()
    now = connection.ops.adapt_datetimefield_value(database_now())
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            CLAIM_UPDATE.format(now="%s", worker="%s", execution="%s", also=""),
            [now, now, worker, execution_id, now],
        )
        row = cursor.fetchone()
        if row is None:
            return None
        cursor.execute(
            f"{ATTEMPT_INSERT} VALUES ({attempt_values('%s', '%s', '%s', '%s', '%s')})",
            [row[0], row[2], worker, task_id, now],
        )
        return (*row, None)


def _json_from_db(name: str, value: Any) -> Any:
    field = BatchLog._meta.get_field(name)
    assert isinstance(field, JSONField), name  # only the JSON columns come back raw
    return field.from_db_value(value, field.cached_col, connection)


def _datetime_from_db(value):
    if isinstance(value, str):  # SQLite hands back text
        return BatchLog._meta.get_field("heartbeat_at").to_python(value).replace(tzinfo=UTC)
    return value


_jobs: dict[int, BatchJob] = {}
# Whether each cached job has downstream jobs (read with it: the dependency services touch an
# upstream job's updated_at when its edges change, so a worker's cache follows).
_jobs_with_downstream: dict[int, bool] = {}


def job_cached(job_id: int, *, updated_at=None) -> BatchJob:
    """The job, re-read only when it changed: a worker process runs the same few jobs over and
    over. `updated_at`, when the caller already read it, saves the look-up."""
    if updated_at is None:
        updated_at = BatchJob.objects.filter(pk=job_id).values_list("updated_at", flat=True).first()
    cached = _jobs.get(job_id)
    if cached is not None and cached.updated_at == updated_at:
        return cached
    # One query for the job and whether it notifies: in a process that runs many jobs (the
    # lane, with one schedule per endpoint) most claims miss this cache.
    job = BatchJob.objects.annotate(
        has_notifications=Exists(
            JobNotification.objects.filter(job_id=OuterRef("pk"), enabled=True)
        ),
        has_downstream=Exists(JobDependency.objects.filter(upstream_id=OuterRef("pk"))),
    ).get(pk=job_id)
    job.notifies = job.has_notifications
    if len(_jobs) > 1000:
        _jobs.clear()
        _jobs_with_downstream.clear()
    _jobs[job_id] = job
    _jobs_with_downstream[job_id] = job.has_downstream
    return job


def _starts_downstream(job: BatchJob) -> bool:
    """Whether an end of `job` may start downstream runs: known from the worker's cache for
    the cached job (no query on the hot path), asked for any other."""
    if _jobs.get(job.pk) is job:
        return _jobs_with_downstream.get(job.pk, True)
    return JobDependency.objects.filter(upstream_id=job.pk).exists()


def _overlap_declined(execution_id: int) -> None:
    """Another run of this exclusive job is running. A new run of a `skip` job is declined;
    any other waits for it: a run of a `queue` job, and a retry of a run that already started
    (it is the same run, not a new one: skipping it would record SKIPPED what ran)."""
    execution = BatchLog.objects.select_related("job").get(pk=execution_id)
    running = (
        BatchLog.objects.filter(job_id=execution.job_id, status__in=RUNNING_STATUSES)
        .values_list("pk", flat=True)
        .first()
    )
    queued = BatchLog.objects.filter(pk=execution_id, status=ExecutionStatus.QUEUED)
    if execution.job.overlap_policy == OverlapPolicy.SKIP and execution.attempts == 0:
        # Errors a worker writes are in the deployment's language (LANGUAGE_CODE).
        reason = gettext(
            "skipped by the overlap policy: execution #%(running)s of this job was running"
        ) % {"running": running}
        with transaction.atomic():  # the fire's occurrence record says so with the execution
            if queued.filter(attempts=0).update(
                status=ExecutionStatus.SKIPPED, finished_at=Now(), error=reason
            ):
                ScheduleOccurrence.objects.filter(execution_id=execution_id).update(
                    outcome=OccurrenceOutcome.SKIPPED_OVERLAP, reason=reason[:500]
                )
    else:
        queued.update(next_attempt_at=database_now() + OVERLAP_RECHECK)


def execution_heartbeat(
    *, execution_id: int, attempt: int, progress: tuple[int, int | None] | None
) -> ExecutionStatus | None:
    """Mark the attempt alive. Returns the execution's status (STOPPING asks the attempt to
    end), or None if the attempt no longer owns the execution (reaped)."""
    fields: dict[str, Any] = {"heartbeat_at": Now()}
    if progress is not None:
        fields["progress_done"], fields["progress_total"] = progress
    owned = BatchLog.objects.filter(pk=execution_id, status__in=RUNNING_STATUSES, attempts=attempt)
    if owned.filter(status=ExecutionStatus.STARTED).update(**fields):
        return ExecutionStatus.STARTED
    return ExecutionStatus.STOPPING if owned.update(**fields) else None


def executions_heartbeat(attempts: Mapping[int, int]) -> dict[int, ExecutionStatus]:
    """Mark alive every attempt of `attempts` (execution id -> attempt number) in one
    statement. Returns the status of each execution the attempt still owns (STOPPING asks it
    to end); an execution missing from the answer was reaped."""
    ids, numbers = list(attempts), list(attempts.values())
    if connection.vendor == "postgresql":
        sql = HEARTBEAT_MANY.format(
            now="STATEMENT_TIMESTAMP()",
            beating="unnest(%s::bigint[], %s::integer[]) AS beating(id, attempt)",
        )
        params: list[Any] = [ids, numbers]
    else:
        sql = HEARTBEAT_MANY.format(
            now="%s",
            beating=(
                "(SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS "
                "attempt FROM json_each(%s))"
            ),
        )
        now = connection.ops.adapt_datetimefield_value(database_now())
        params = [now, json.dumps([[pk, number] for pk, number in attempts.items()])]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {pk: ExecutionStatus(status) for pk, status in cursor.fetchall()}


def execution_finish_attempt(
    *, execution: BatchLog, attempt: int, outcome: AttemptOutcome, job: BatchJob
) -> ExecutionStatus | None:
    """Record how attempt `attempt` ended and decide the execution's next state: COMPLETED,
    STOPPED (an operator asked, or the attempt was stopped), QUEUED again with a backoff, or
    FAILED. None if the attempt no longer owned the execution (the reaper took it).

    The other hot statement of every run: one round trip on PostgreSQL. Applying it twice
    changes nothing the second time (it expects the attempt running), so a caller may repeat
    it after a lost reply and ask execution_attempt_recorded what the first one did."""
    if outcome.succeeded:
        planned = ExecutionStatus.COMPLETED
    elif outcome.status == AttemptStatus.STOPPED:
        planned = ExecutionStatus.STOPPED
    elif outcome.retryable and attempt < execution.max_attempts:
        planned = ExecutionStatus.QUEUED
    else:
        planned = ExecutionStatus.FAILED
    params: dict[str, Any] = {
        "planned": planned.value,
        "result": json.dumps(outcome.result, cls=DjangoJSONEncoder),
        "error": outcome.error or (stopped_message() if planned == "STOPPED" else ""),
        "id": execution.pk,
        "number": attempt,
        "attempt_status": outcome.status.value,
        "http_status": outcome.http_status,
        "excerpt": outcome.response_excerpt,
        "retryable": None if outcome.succeeded else outcome.retryable,
    }
    # Only a retry has a backoff: the success path never computes one.
    retrying = planned == ExecutionStatus.QUEUED
    if retrying:
        params["delay"] = retry_delay(job, failed_attempt=attempt).total_seconds()
    # A job with downstream jobs starts them in the transaction of its end (dependencies.py);
    # the others keep the one autocommitted statement.
    downstream = _starts_downstream(job)
    with transaction.atomic() if downstream else nullcontext():
        row = _finish_statement(params, retrying=retrying)
        if row is None:
            return None
        status = ExecutionStatus(row[0])
        if downstream and status in ENDS_THAT_START:
            dependents_start(execution_id=execution.pk)
    _after_finish(execution=execution, job=job, status=status)
    return status


def _finish_statement(params: dict[str, Any], *, retrying: bool):
    """FINISH_EXECUTION and FINISH_ATTEMPT: the execution's new status as a row, or None."""
    if connection.vendor == "postgresql":
        now = "STATEMENT_TIMESTAMP()"
        retry_at = f"{now} + make_interval(secs => %(delay)s)" if retrying else "NULL"
        sql = f"""
            WITH ended AS ({FINISH_EXECUTION.format(now=now, retry_at=retry_at, json="::jsonb")}),
            noted AS ({FINISH_ATTEMPT.format(now=now)} AND EXISTS (SELECT 1 FROM ended))
            SELECT status FROM ended
        """
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    now_value = database_now()
    adapt = connection.ops.adapt_datetimefield_value
    retry_value = now_value + timedelta(seconds=params["delay"]) if retrying else None
    params |= {"now": adapt(now_value), "retry_at": adapt(retry_value)}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            FINISH_EXECUTION.format(now="%(now)s", retry_at="%(retry_at)s", json=""), params
        )
        row = cursor.fetchone()
        if row is not None:
            cursor.execute(FINISH_ATTEMPT.format(now="%(now)s"), params)
        return row


def execution_attempt_recorded(
    *, execution: BatchLog, attempt: int, outcome: AttemptOutcome, job: BatchJob
) -> ExecutionStatus | None:
    """The execution's status if attempt `attempt` is already recorded with `outcome`'s status:
    a finish whose commit landed but whose reply was lost. None if something else ended the
    attempt (the reaper's LOST), or if it is still running."""
    recorded = (
        BatchAttempt.objects.filter(execution_id=execution.pk, number=attempt)
        .values_list("status", "execution__status", "execution__attempts")
        .first()
    )
    if recorded is None:
        return None
    attempt_status, status, attempts = recorded
    if attempt_status != outcome.status or attempts != attempt or status in RUNNING_STATUSES:
        return None
    status = ExecutionStatus(status)
    _after_finish(execution=execution, job=job, status=status)
    return status


def _after_finish(*, execution: BatchLog, job: BatchJob, status: ExecutionStatus) -> None:
    if execution.exclusive:
        transaction.on_commit(lambda: _hand_over(job_id=execution.job_id, ended_id=execution.pk))
    # Its slot of each limit goes to the oldest run waiting for one (also after a retry's
    # failed attempt: the retry waits its backoff outside the slot). Robust: the outcome is
    # recorded already, and a wake-up that failed is made up by the relay's net.
    limits = job_limits(job)
    if limits:
        transaction.on_commit(lambda: held_wake_after_run(limits), robust=True)
    # The hooks tell the job's notifications (registered by apps.py): a worker's cached job
    # knows whether it has any, which spares the hot path a call per run; any other job is
    # looked up. A backfill's run tells its backfill, which fills the slot it frees. A hook
    # never fails the job: robust, so an error there is only logged.
    if job.notifies or execution.backfill_id is not None:
        transaction.on_commit(lambda: execution_ended(
            execution_id=execution.pk, status=status), robust=True)  # fmt: skip


def _hand_over(*, job_id: int, ended_id: int) -> None:
    """An exclusive run ended: send the oldest run of the same job that waits only for it.

    A run that never started waits for nothing else. One that already had an attempt may be
    in its retry backoff (the run that just failed among them), which a hand-over must not cut
    short: it is sent only once the longest backoff its last attempt could have got is over,
    i.e. when it is a retry the overlap held back."""
    from .publish import executions_publish_or_defer

    now = database_now()
    candidates = (
        BatchLog.objects.filter(job_id=job_id, status=ExecutionStatus.QUEUED, exclusive=True)
        .exclude(pk=ended_id)
        .annotate(last_attempt_ended=Max("attempt_rows__finished_at"))
        .order_by("created_at", "pk")
        .values_list("pk", "attempts", "next_attempt_at", "last_attempt_ended")
    )
    for pk, attempts, next_attempt_at, last_attempt_ended in candidates[:HAND_OVER_CANDIDATES]:
        if attempts and next_attempt_at is not None and next_attempt_at > now:
            longest = retry_delay(job_cached(job_id), failed_attempt=attempts, jitter=False)
            if last_attempt_ended is None or last_attempt_ended + longest > now:
                continue  # in its backoff
        woken = BatchLog.objects.filter(
            pk=pk, status=ExecutionStatus.QUEUED, next_attempt_at=next_attempt_at
        ).update(next_attempt_at=Now())
        if woken:
            executions_publish_or_defer([pk])
        return


def executions_reap_lost(*, limit: int = 500) -> int:
    """Attempts whose heartbeat stopped (the worker died) end LOST; each execution is retried
    or FAILED by the same rule as any failed attempt. Returns how many were reaped.

    One row at a time, each in a transaction of its own: a row whose reaping raises is set
    aside (FAILED, with the error shown) and the others are reaped in the same pass
    (DESIGN.md §4.11). A database that went away fails the whole pass, retried next tick."""
    cutoff = database_now() - timedelta(seconds=settings.BATCHJOBS_HEARTBEAT_TIMEOUT_SECONDS)
    # Ids only: a row that cannot even be loaded must not stop the others.
    stale = list(
        BatchLog.objects.filter(status__in=RUNNING_STATUSES, heartbeat_at__lt=cutoff)
        .order_by("heartbeat_at")
        .values_list("pk", "attempts")[:limit]
    )
    reaped = 0
    for execution_id, attempt in stale:
        failures: list[str] = []
        with row_isolated(f"reaping execution {execution_id}", failures):
            reaped += _reap(execution_id=execution_id, attempt=attempt)
        if failures:
            _set_aside(execution_id=execution_id, attempt=attempt, reason=failures[0])
    return reaped


def _reap(*, execution_id: int, attempt: int) -> bool:
    execution = (
        BatchLog.objects.select_related("job")
        .filter(pk=execution_id, status__in=RUNNING_STATUSES, attempts=attempt)
        .first()
    )
    if execution is None:  # it finished meanwhile
        return False
    outcome = AttemptOutcome(
        status=AttemptStatus.LOST,
        error=(
            f"worker {execution.worker} stopped heartbeating during attempt "
            f"{execution.attempts} (last sign of life {execution.heartbeat_at:%H:%M:%S})"
        ),
        retryable=True,
    )
    return bool(
        execution_finish_attempt(
            execution=execution, attempt=attempt, outcome=outcome, job=execution.job
        )
    )


def _set_aside(*, execution_id: int, attempt: int, reason: str) -> None:
    """End an execution the reaper could not process: FAILED, its attempt LOST, the error on
    view; by plain conditional updates that load nothing of the row, so it never comes back."""
    with transaction.atomic():
        ended = BatchLog.objects.filter(
            pk=execution_id, status__in=RUNNING_STATUSES, attempts=attempt
        ).update(
            status=ExecutionStatus.FAILED,
            finished_at=Now(),
            heartbeat_at=None,
            error=gettext("set aside by the reaper: %(reason)s") % {"reason": reason},
            set_aside_at=Now(),
            set_aside_reason=reason,
        )
        if ended:
            BatchAttempt.objects.filter(
                execution_id=execution_id, number=attempt, status=AttemptStatus.RUNNING
            ).update(status=AttemptStatus.LOST, finished_at=Now(), error=reason)
            dependents_start(execution_id=execution_id)


def relay_cutoff() -> datetime:
    """A QUEUED execution sent before this and not claimed since may have lost its message."""
    return database_now() - timedelta(seconds=settings.BATCHJOBS_RELAY_AFTER_SECONDS)


def executions_unclaimed_queues(*, sent_before: datetime) -> set[str]:
    """The queues of QUEUED executions sent before `sent_before` and not claimed since: the
    only queues whose broker contents the relay needs to read."""
    return set(
        BatchLog.objects.filter(
            status=ExecutionStatus.QUEUED,
            next_attempt_at__lte=Now(),
            published_at__lt=sent_before,
            set_aside_at__isnull=True,
        )
        .order_by()
        .values_list("job__queue", flat=True)
        .distinct()
    )


def executions_due_for_publish(
    *,
    limit: int = 1000,
    backlogged_queues: Collection[str] = (),
    held_by_broker: Collection[int] = (),
    sent_before: datetime | None = None,
) -> list[int]:
    """QUEUED executions that need a message now: a retry whose backoff is over, a run an
    overlap held back, or one whose message is lost: sent before `sent_before` (by default,
    the relay delay ago), not claimed since, and not in `held_by_broker` (the ids the broker's
    queues and workers hold, read after `sent_before` was taken). The relay leaves a
    held one alone (it is only waiting its turn, and a copy would lengthen the wait of every
    run behind it), and so every stale one of `backlogged_queues`, queues whose contents it
    could not read.
    Marks them published, so concurrent relays split rather than double the work."""
    now = database_now()
    lost = (
        Q(published_at__lt=sent_before or relay_cutoff())
        & ~Q(job__queue__in=list(backlogged_queues))
        & ~_pk_in(held_by_broker)
    )
    with transaction.atomic():
        due = list(
            BatchLog.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                status=ExecutionStatus.QUEUED, next_attempt_at__lte=now, set_aside_at__isnull=True
            )
            .filter(Q(published_at__isnull=True) | Q(published_at__lt=F("next_attempt_at")) | lost)
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:limit]
        )
        if due:
            BatchLog.objects.filter(pk__in=due).update(published_at=now)
    return due


def _pk_in(ids: Collection[int]) -> Q:
    """pk IN ids, the ids sent as one parameter (an array; JSON on SQLite): 10,000 ids as as
    many parameters take ~100 ms to build and parse, as one ~10 ms."""
    if not ids:
        return Q(pk__in=[])
    if connection.vendor == "postgresql":
        return Q(pk__in=RawSQL("SELECT unnest(%s::bigint[])", [list(ids)]))
    return Q(pk__in=RawSQL("SELECT value FROM json_each(%s)", [json.dumps(list(ids))]))


def executions_set_aside_unsent(*, errors: Mapping[int, BaseException]) -> int:
    """End the QUEUED executions whose message could not be sent (Celery or Redis refused
    their route): FAILED, set aside with the error on view, so that the relay stops trying
    and an operator sees why (DESIGN.md §4.11). Returns how many were set aside."""
    set_aside = 0
    for execution_id, error in errors.items():
        reason = set_aside_reason(error)
        unsent = BatchLog.objects.filter(pk=execution_id, status=ExecutionStatus.QUEUED)
        with transaction.atomic():
            ended = unsent.update(
                status=ExecutionStatus.FAILED,
                finished_at=Now(),
                error=gettext("set aside by the relay: %(reason)s") % {"reason": reason},
                set_aside_at=Now(),
                set_aside_reason=reason,
            )
            if ended:
                dependents_start(execution_id=execution_id)
        set_aside += ended
    return set_aside


# --- an operator's transitions (services/operator.py is the door to them) ------------------


def execution_stop_request(*, execution_id: int) -> tuple[ExecutionStatus, ExecutionStatus] | None:
    """A QUEUED execution stops at once (STOPPED); a STARTED one is asked to (STOPPING), and
    its attempt ends it. Returns the change made, None if it was asked before (STOPPING).
    Conflict if it cannot be stopped. A run stopped before it started starts the downstream
    runs its end calls for, in the same transaction."""
    with transaction.atomic():
        if BatchLog.objects.filter(pk=execution_id, status=ExecutionStatus.QUEUED).update(
            status=ExecutionStatus.STOPPED,
            finished_at=Now(),  # it ended: retention counts its age from here
            error=gettext("stopped by an operator before it started"),
        ):
            dependents_start(execution_id=execution_id)
            return ExecutionStatus.QUEUED, ExecutionStatus.STOPPED
    if BatchLog.objects.filter(pk=execution_id, status=ExecutionStatus.STARTED).update(
        status=ExecutionStatus.STOPPING
    ):
        return ExecutionStatus.STARTED, ExecutionStatus.STOPPING
    status = BatchLog.objects.filter(pk=execution_id).values_list("status", flat=True).first()
    if status != ExecutionStatus.STOPPING:
        raise Conflict(
            gettext("execution %(id)s is %(status)s; it cannot be stopped")
            % {"id": execution_id, "status": status}
        )
    return None


def execution_set_abandoned(*, execution_id: int) -> ExecutionStatus:
    """STOPPED or FAILED -> ABANDONED, never restartable; its unfinished steps are ABANDONED
    too, so that a restart of the instance does not run them. Returns the status it had.
    Conflict if it is in another status. Call inside a transaction."""
    status = (
        BatchLog.objects.select_for_update()
        .filter(pk=execution_id)
        .values_list("status", flat=True)
        .first()
    )
    if status not in RESTARTABLE_STATUSES or not BatchLog.objects.filter(
        pk=execution_id, status=status
    ).update(status=ExecutionStatus.ABANDONED):
        raise Conflict(
            gettext(
                "execution %(id)s is %(status)s; only STOPPED or FAILED executions can be abandoned"
            )
            % {"id": execution_id, "status": status}
        )
    StepExecution.objects.filter(execution_id=execution_id).exclude(
        status=ExecutionStatus.COMPLETED
    ).update(status=ExecutionStatus.ABANDONED)
    # Its FAILED or STOPPED end started its downstream runs already (their start keys say so):
    # this starts only those of edges added since.
    dependents_start(execution_id=execution_id)
    return ExecutionStatus(status)


@dataclass(frozen=True)
class RestartPlan:
    """What the restart of an execution starts with: the instance's key, and the context to
    resume from (the steps done, each unfinished step's checkpoint)."""

    instance_key: str
    execution_context: dict


def execution_restart_prepare(*, source: BatchLog) -> RestartPlan:
    """Check that `source` may be restarted (FAILED or STOPPED, and not restarted already),
    and give the restart's key and context. Call inside a transaction; Conflict if not."""
    if source.status not in RESTARTABLE_STATUSES:
        raise Conflict(
            gettext("execution %(id)s is %(status)s; only FAILED or STOPPED ones restart")
            % {"id": source.pk, "status": source.status}
        )
    key = source.instance_key or f"run-{source.pk}"
    if not source.instance_key:
        BatchLog.objects.filter(pk=source.pk).update(instance_key=key)
    later = BatchLog.objects.filter(instance_key=key, pk__gt=source.pk)
    if later.filter(Q(status__in=ACTIVE_STATUSES) | Q(status=ExecutionStatus.COMPLETED)).exists():
        raise Conflict(gettext("execution %(id)s was already restarted") % {"id": source.pk})
    done = set(
        StepExecution.objects.filter(
            execution__instance_key=key, partition="", status__in=STEP_DONE_STATUSES
        ).values_list("step_name", flat=True)
    )
    done |= set((source.execution_context or {}).get("restart", {}).get("done_steps", []))
    resume = {
        row.step_name: row.execution_context
        for row in StepExecution.objects.filter(execution=source, partition="").exclude(
            status__in=STEP_DONE_STATUSES
        )
    }
    context = {
        "job": (source.execution_context or {}).get("job", {}),
        "restart": {"done_steps": sorted(done), "resume": resume},
    }
    return RestartPlan(instance_key=key, execution_context=context)


def execution_partitions_carry(*, source: BatchLog, restarted: BatchLog) -> None:
    """Give a restart the partitions of `source`: the completed ones as they are, the others
    QUEUED, to start again from their checkpoints."""
    rows = StepExecution.objects.filter(execution=source).exclude(partition="")
    StepExecution.objects.bulk_create(
        StepExecution(
            execution=restarted, step_name=row.step_name, partition=row.partition,
            status=ExecutionStatus.COMPLETED if row.status == ExecutionStatus.COMPLETED
            else ExecutionStatus.QUEUED,
            execution_context=row.execution_context,
            **({name: getattr(row, name) for name in COUNTERS}
               if row.status == ExecutionStatus.COMPLETED else {}),
        )
        for row in rows
    )  # fmt: skip
