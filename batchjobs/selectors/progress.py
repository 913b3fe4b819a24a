"""The progress of running executions and of their steps, for the dashboard and the execution
page."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import OuterRef, Subquery
from django.db.models.functions import Coalesce

from batchjobs.batch.engine import ITEMS_TOTAL_KEY
from batchjobs.models import BatchAttempt, BatchLog, StepExecution
from batchjobs.models.clock import database_now
from batchjobs.models.execution import RUNNING_STATUSES


@dataclass(frozen=True)
class Progress:
    """How far a running execution or step is: items done, of how many (when this run knows:
    its handler said so, or its step's reader counted its input), at what rate, and when it
    should end (only with a total).

    The rate is the items done over the time the attempt (or step) took to do them, up to the
    moment the count was taken (its heartbeat or chunk commit), not up to now: a count is
    seconds old when it is read, and dividing it by the time until now made the rate and the
    ETA saw-tooth between samples. Averaged since the start, it settles as the run goes on
    and moves with a change of pace only as fast as that change weighs in the whole."""

    label: str
    status: str
    done: int | None
    total: int | None
    total_estimated: bool
    rate: float | None  # items per second
    eta_seconds: float | None

    @property
    def percent(self) -> float | None:
        if self.done is None or not self.total:
            return None
        return min(100.0, 100.0 * self.done / self.total)


def _progress(
    *, label: str, status: str, done: int | None, total: int | None, estimated: bool,
    started_at: datetime | None, sampled_at: datetime | None, now: datetime,
) -> Progress:  # fmt: skip
    """`done` as counted at `sampled_at` (None: now), by an attempt or step that started at
    `started_at`."""
    sampled_at = min(sampled_at or now, now)
    rate = eta = None
    if done is not None and started_at is not None:
        elapsed = (sampled_at - started_at).total_seconds()
        if elapsed > 0:
            rate = done / elapsed
    running = status in RUNNING_STATUSES
    if running and total is not None and done is not None and rate:
        since_sample = (now - sampled_at).total_seconds()
        eta = max(0.0, (total - done) / rate - since_sample)
    return Progress(label=label, status=status, done=done, total=total,
                    total_estimated=estimated, rate=rate, eta_seconds=eta)  # fmt: skip


def _attempt_started_at(execution: BatchLog) -> datetime | None:
    """When the execution's latest attempt started: its progress is that attempt's (a claim
    clears what an earlier attempt reported). Annotated by running_executions, else read."""
    if hasattr(execution, "attempt_started_at"):
        return execution.attempt_started_at
    started = (
        BatchAttempt.objects.filter(execution_id=execution.pk, number=execution.attempts)
        .values_list("started_at", flat=True)
        .first()
    )
    return started or execution.started_at


def execution_progress(
    *,
    execution: BatchLog,
    now: datetime | None = None,
    running_steps: list[StepExecution] | None = None,
) -> list[Progress]:
    """The execution's own progress (as its handler reports it), then one entry per running
    step or partition of a batch job, with its counters. `running_steps`: its running steps
    when the caller read them already (running_executions reads them for the whole list in
    one query)."""
    now = now or database_now()
    entries = []
    if execution.progress_done is not None:
        entries.append(
            _progress(
                label="",
                status=execution.status,
                done=execution.progress_done,
                total=execution.progress_total,
                estimated=False,
                started_at=_attempt_started_at(execution),
                # The heartbeat that brought the count; the end, once ended.
                sampled_at=execution.heartbeat_at or execution.finished_at,
                now=now,
            )  # fmt: skip
        )
    if execution.status not in RUNNING_STATUSES:
        return entries
    running = (
        running_steps
        if running_steps is not None
        else list(_running_steps().filter(execution=execution))
    )
    # A partitioned step's own row counts nothing: its partitions do the reading.
    partitioned = {step.step_name for step in running if step.partition}
    running = [step for step in running if step.partition or step.step_name not in partitioned]
    for step in running:
        # Counted by the step's reader for this run (batch.engine); else there is none.
        total = (step.execution_context or {}).get(ITEMS_TOTAL_KEY)
        if not isinstance(total, int) or isinstance(total, bool):
            total = None
        label = f"{step.step_name} [{step.partition}]" if step.partition else step.step_name
        entries.append(
            _progress(
                label=label,
                status=step.status,
                # Lines a reader skipped are items done, as its count of the input has them.
                done=step.read_count + step.read_skip_count,
                total=total,
                estimated=total is not None,
                started_at=step.started_at,
                sampled_at=step.heartbeat_at,  # each chunk's commit sets it
                now=now,
            )  # fmt: skip
        )
    return entries


def _running_steps():
    return StepExecution.objects.filter(status__in=RUNNING_STATUSES).order_by("pk")


@dataclass(frozen=True)
class RunningExecution:
    execution: BatchLog
    progress: list[Progress]


def running_executions(*, limit: int = 20) -> list[RunningExecution]:
    latest_attempt = BatchAttempt.objects.filter(
        execution_id=OuterRef("pk"), number=OuterRef("attempts")
    ).values("started_at")[:1]
    executions = list(
        BatchLog.objects.select_related("job")
        .filter(status__in=RUNNING_STATUSES)
        .annotate(attempt_started_at=Coalesce(Subquery(latest_attempt), "started_at"))
        .order_by("started_at", "pk")[:limit]
    )
    steps: dict[int, list[StepExecution]] = {e.pk: [] for e in executions}
    for step in _running_steps().filter(execution_id__in=list(steps)):
        steps[step.execution_id].append(step)
    now = database_now()
    return [
        RunningExecution(
            execution=e,
            progress=execution_progress(execution=e, now=now, running_steps=steps[e.pk]),
        )
        for e in executions
    ]
