"""The progress of running executions and of their steps, for the dashboard and the execution
page."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Subquery

from batchjobs.models import BatchLog, ExecutionStatus, StepExecution
from batchjobs.models.clock import database_now
from batchjobs.models.execution import RUNNING_STATUSES


@dataclass(frozen=True)
class Progress:
    """How far a running execution or step is: items done, of how many (reported by the job,
    or estimated from the job's last completed run), at what rate, and when it should end."""

    label: str
    status: str
    done: int | None
    total: int | None
    total_estimated: bool
    rate: float | None  # items per second since the start
    eta_seconds: float | None

    @property
    def percent(self) -> float | None:
        if self.done is None or not self.total:
            return None
        return min(100.0, 100.0 * self.done / self.total)


def _progress(
    *, label: str, status: str, done: int | None, total: int | None, estimated: bool,
    started_at: datetime | None, now: datetime,
) -> Progress:  # fmt: skip
    rate = eta = None
    if done is not None and started_at is not None:
        elapsed = (now - started_at).total_seconds()
        if elapsed > 0:
            rate = done / elapsed
    if total is not None and done is not None and rate:
        eta = max(0.0, (total - done) / rate)
    return Progress(label=label, status=status, done=done, total=total,
                    total_estimated=estimated, rate=rate, eta_seconds=eta)  # fmt: skip


def _usual_step_sizes(execution: BatchLog) -> dict[tuple[str, str], int]:
    """Items each step read in the job's latest completed execution: the estimate of a running
    step's total when the reader cannot know it."""
    latest = (
        BatchLog.objects.filter(job_id=execution.job_id, status=ExecutionStatus.COMPLETED)
        .exclude(pk=execution.pk)
        .order_by("-created_at", "-pk")
        .values("pk")[:1]
    )
    rows = StepExecution.objects.filter(
        execution_id=Subquery(latest), status=ExecutionStatus.COMPLETED
    ).values_list("step_name", "partition", "read_count")
    return {(name, partition): count for name, partition, count in rows}


def execution_progress(*, execution: BatchLog, now: datetime | None = None) -> list[Progress]:
    """The execution's own progress (as its handler reports it), then one entry per running
    step or partition of a batch job, with its counters."""
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
                started_at=execution.started_at,
                now=now,
            )  # fmt: skip
        )
    if execution.status not in RUNNING_STATUSES:
        return entries
    running = list(
        StepExecution.objects.filter(execution=execution, status__in=RUNNING_STATUSES).order_by(
            "pk"
        )
    )
    # A partitioned step's own row counts nothing: its partitions do the reading.
    partitioned = {step.step_name for step in running if step.partition}
    running = [step for step in running if step.partition or step.step_name not in partitioned]
    if not running:
        return entries
    usual = _usual_step_sizes(execution)
    for step in running:
        total = usual.get((step.step_name, step.partition))
        label = f"{step.step_name} [{step.partition}]" if step.partition else step.step_name
        entries.append(
            _progress(
                label=label,
                status=step.status,
                done=step.read_count,
                total=total,
                estimated=total is not None,
                started_at=step.started_at,
                now=now,
            )  # fmt: skip
        )
    return entries


@dataclass(frozen=True)
class RunningExecution:
    execution: BatchLog
    progress: list[Progress]


def running_executions(*, limit: int = 20) -> list[RunningExecution]:
    executions = (
        BatchLog.objects.select_related("job")
        .filter(status__in=RUNNING_STATUSES)
        .order_by("started_at", "pk")[:limit]
    )
    now = database_now()
    return [
        RunningExecution(execution=e, progress=execution_progress(execution=e, now=now))
        for e in executions
    ]
