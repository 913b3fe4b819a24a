"""Where a running batch job keeps its state: StepExecution rows and the execution context,
saved in the same transaction as each chunk's writes (Spring Batch's JobRepository).

The engine owns its steps' and partitions' statuses, written here; it only reads the
execution's (BatchLog) status, to see a stop asked for: every change of that one is made by
batchjobs.execution.lifecycle, above, from the outcome the engine returns."""

import json
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Count
from django.db.models.functions import Now

from batchjobs.models import BatchLog, ExecutionStatus, StepExecution
from batchjobs.models.execution import PARTITION_REQUEUED_STATUSES, STEP_DONE_STATUSES

# Counted as items are read and processed, and as chunks are written.
READ_COUNTERS = ("read_count", "filter_count", "read_skip_count", "process_skip_count")
WRITE_COUNTERS = ("write_count", "write_skip_count", "commit_count", "rollback_count")
COUNTERS = (
    "read_count", "write_count", "filter_count", "read_skip_count", "process_skip_count",
    "write_skip_count", "commit_count", "rollback_count",
)  # fmt: skip


@dataclass
class StepRecord:
    pk: int
    name: str
    partition: str
    status: str
    context: dict
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))

    @property
    def skips(self) -> int:
        return sum(self.counts[k] for k in ("read_skip_count", "process_skip_count",
                                            "write_skip_count"))  # fmt: skip


def _record(row: StepExecution) -> StepRecord:
    return StepRecord(
        pk=row.pk, name=row.step_name, partition=row.partition, status=row.status,
        context=dict(row.execution_context or {}),
        counts={name: getattr(row, name) for name in COUNTERS},
    )  # fmt: skip


class JobRepository:
    def __init__(self, execution_id: int) -> None:
        self.execution_id = execution_id

    def step_open(self, name: str, *, partition: str = "", resume_from: dict | None = None
                  ) -> StepRecord:  # fmt: skip
        """The step's row in this execution, created on first use (with the context of an
        earlier execution of the job instance, on a restart) and marked STARTED."""
        row, created = StepExecution.objects.get_or_create(
            execution_id=self.execution_id, step_name=name, partition=partition,
            defaults={"status": ExecutionStatus.STARTED, "execution_context": resume_from or {},
                      "started_at": Now()},
        )  # fmt: skip
        if not created and row.status not in STEP_DONE_STATUSES:
            StepExecution.objects.filter(pk=row.pk).update(
                status=ExecutionStatus.STARTED, finished_at=None, error="", heartbeat_at=Now()
            )
            row.status = ExecutionStatus.STARTED
        return _record(row)

    def chunk_saved(self, record: StepRecord) -> bool:
        """Save counters and checkpoint inside the chunk's transaction; True if the execution
        has been asked to stop (the answer rides on the same statement: no extra round trip).

        On PostgreSQL the statement also makes this transaction's commit asynchronous: the
        checkpoint commits with the chunk's rows, so a crash loses both together and restart
        stays exact, while the chunk does not wait for the disk (DESIGN.md §7)."""
        if connection.vendor != "postgresql":
            StepExecution.objects.filter(pk=record.pk).update(
                execution_context=record.context, heartbeat_at=Now(), **record.counts
            )
            return self.stop_requested()
        table, log = StepExecution._meta.db_table, BatchLog._meta.db_table
        counters = ", ".join(f"{name} = %s" for name in COUNTERS)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET execution_context = %s::jsonb, {counters}, "
                "heartbeat_at = STATEMENT_TIMESTAMP() "
                "WHERE id = %s AND set_config('synchronous_commit', 'off', true) = 'off' "
                f"RETURNING (SELECT status FROM {log} WHERE id = %s)",
                [json.dumps(record.context, cls=DjangoJSONEncoder),
                 *(record.counts[name] for name in COUNTERS), record.pk, self.execution_id],
            )  # fmt: skip
            row = cursor.fetchone()
        return row is not None and row[0] == ExecutionStatus.STOPPING

    def step_closed(self, record: StepRecord, *, status: str, exit_status: str, error: str = ""
                    ) -> None:  # fmt: skip
        StepExecution.objects.filter(pk=record.pk).update(
            status=status, exit_status=exit_status, error=error, finished_at=Now(),
            execution_context=record.context, **record.counts,
        )  # fmt: skip
        record.status = status

    def stop_requested(self) -> bool:
        return BatchLog.objects.filter(
            pk=self.execution_id, status=ExecutionStatus.STOPPING
        ).exists()

    def job_context_save(self, context: dict) -> None:
        """Keep the job-level context under "job" beside what the operator put there."""
        with transaction.atomic():
            stored = (
                BatchLog.objects.select_for_update()
                .values_list("execution_context", flat=True)
                .get(pk=self.execution_id)
            )
            BatchLog.objects.filter(pk=self.execution_id).update(
                execution_context={**(stored or {}), "job": context}
            )

    # --- partitions ------------------------------------------------------------------------

    def partitions_prepare(self, step_name: str, contexts: dict[str, dict]) -> list[str]:
        """Create the partitions' rows (QUEUED) on a first run; on a later attempt put every
        partition that did not complete back in the queue. Returns the ones to run."""
        with transaction.atomic():
            existing = set(
                StepExecution.objects.filter(execution_id=self.execution_id, step_name=step_name)
                .exclude(partition="")
                .values_list("partition", flat=True)
            )
            StepExecution.objects.bulk_create(
                StepExecution(execution_id=self.execution_id, step_name=step_name,
                              partition=name, status=ExecutionStatus.QUEUED,
                              execution_context={"partition": context})
                for name, context in contexts.items() if name not in existing
            )  # fmt: skip
            StepExecution.objects.filter(
                execution_id=self.execution_id, step_name=step_name,
                status__in=PARTITION_REQUEUED_STATUSES,
            ).exclude(partition="").update(status=ExecutionStatus.QUEUED)  # fmt: skip
        return list(
            StepExecution.objects.filter(
                execution_id=self.execution_id, step_name=step_name, status=ExecutionStatus.QUEUED
            )
            .exclude(partition="")
            .values_list("partition", flat=True)
        )

    def partition_claim(self, step_name: str) -> StepRecord | None:
        """QUEUED -> STARTED for one partition of the step, or None if none is waiting."""
        for row in (
            StepExecution.objects.filter(
                execution_id=self.execution_id, step_name=step_name, status=ExecutionStatus.QUEUED
            )
            .exclude(partition="")
            .order_by("pk")[:20]
        ):
            claimed = StepExecution.objects.filter(pk=row.pk, status=ExecutionStatus.QUEUED).update(
                status=ExecutionStatus.STARTED, started_at=Now(), heartbeat_at=Now()
            )
            if claimed:
                row.status = ExecutionStatus.STARTED
                return _record(row)
        return None

    def partitions_requeue_silent(self, step_name: str, *, silent_for: timedelta) -> int:
        """Partitions whose worker stopped heartbeating go back to the queue, to resume from
        their last checkpoint on another worker."""
        return StepExecution.objects.filter(
            execution_id=self.execution_id, step_name=step_name, status=ExecutionStatus.STARTED,
            heartbeat_at__lt=Now() - silent_for,  # the database's clock, as the heartbeats
        ).exclude(partition="").update(status=ExecutionStatus.QUEUED)  # fmt: skip

    def partitions_summary(self, step_name: str) -> dict[str, int]:
        rows = (
            StepExecution.objects.filter(execution_id=self.execution_id, step_name=step_name)
            .exclude(partition="")
            .values("status")
            .annotate(n=Count("id"))
        )
        return {row["status"]: row["n"] for row in rows}

    def partition_totals(self, step_name: str) -> dict[str, int]:
        from django.db.models import Sum

        totals = (
            StepExecution.objects.filter(execution_id=self.execution_id, step_name=step_name)
            .exclude(partition="")
            .aggregate(**{name: Sum(name) for name in COUNTERS})
        )
        return {name: totals[name] or 0 for name in COUNTERS}
