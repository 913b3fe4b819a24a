"""Running a Job: the flow between nodes, tasklet and chunk steps, partitions.

Chunk semantics follow Spring Batch: items are read and processed one by one and written a
chunk at a time in one transaction, together with the step's counters and the streams'
checkpoint. A failed write is retried as a whole (retry policy), then, if the error is
skippable, the chunk is scanned: each item written in its own transaction, the failing ones
skipped. Skips of every kind count against the skip limit.
"""

import copy
import logging
import time
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils.translation import gettext

from batchjobs.models import ExecutionStatus

from .job import (
    END,
    FAIL,
    STOP,
    ChunkStep,
    Decider,
    Job,
    PartitionStep,
    RepeatStatus,
    Step,
    StepContext,
    TaskletStep,
)
from .policies import RetryPolicy, SkipLimitExceeded
from .protocols import CountingReader, ItemStream
from .repository import READ_COUNTERS, WRITE_COUNTERS, JobRepository, StepRecord

# The statuses a step or a job run ends with (the execution statuses: models/execution.py).
COMPLETED, FAILED, STOPPED = (
    ExecutionStatus.COMPLETED,
    ExecutionStatus.FAILED,
    ExecutionStatus.STOPPED,
)
PARTITION_POLL_SECONDS = 0.2
# Where a chunk step's context keeps the number of items it reads in this run, if its reader
# can count them (CountingReader): the total of the step's progress.
ITEMS_TOTAL_KEY = "items_total"

logger = logging.getLogger(__name__)


@dataclass
class JobResult:
    status: str  # COMPLETED, FAILED or STOPPED
    exit_status: str
    error: str = ""
    retryable: bool = False


@dataclass
class _StepOutcome:
    status: str
    exit_status: str
    error: str = ""
    retryable: bool = False


class _Stopped(Exception):
    """The operator asked the execution to stop; raised at a chunk boundary."""


@dataclass
class JobRunner:
    job: Job
    execution_id: int
    params: dict[str, Any]
    job_context: dict[str, Any]
    repository: JobRepository
    # Steps that completed (or were abandoned) in earlier executions of the job instance, and
    # the checkpoint each unfinished step reached there.
    done_steps: frozenset[str] = frozenset()
    resume: dict[str, dict] = field(default_factory=dict)
    launch_partitions: Callable[[str, int], None] | None = None
    partition_silence: timedelta = timedelta(seconds=60)
    # Wraps a partition's run so that something beats for it (see JobRepository's requeue).
    partition_heartbeat: Callable[[int], AbstractContextManager] = nullcontext
    _stop_asked: bool = field(default=False, init=False)

    def run(self) -> JobResult:
        for listener in self.job.listeners:
            listener.before_job(self.job_context)
        result = self._flow()
        self.repository.job_context_save(self.job_context)
        for listener in self.job.listeners:
            listener.after_job(self.job_context, result.status)
        return result

    def _flow(self) -> JobResult:
        name, last_exit, failure = self.job.start, None, None
        while True:
            node = self.job.nodes[name]
            if isinstance(node, Decider):
                exit_status = node.decide(self.job_context, last_exit)
            else:
                outcome = self._step(node)
                if outcome.status == STOPPED:
                    return JobResult(STOPPED, STOPPED, outcome.error)
                if outcome.status == FAILED:
                    failure = outcome
                exit_status = outcome.exit_status
            target = self.job.next_target(name, exit_status)
            if target == END:
                return JobResult(COMPLETED, exit_status)
            if target == FAIL:
                # Errors a worker writes are in the deployment's language (LANGUAGE_CODE).
                error = (
                    failure.error
                    if failure
                    else gettext("flow failed after %(step)s (%(exit_status)s)")
                    % {"step": name, "exit_status": exit_status}
                )
                return JobResult(FAILED, exit_status, error, bool(failure and failure.retryable))
            if target == STOP:
                return JobResult(
                    STOPPED, exit_status, gettext("flow stopped after %(step)s") % {"step": name}
                )
            name, last_exit = target, exit_status

    # --- steps ----------------------------------------------------------------------------

    def _step(self, step: Step) -> _StepOutcome:
        if step.name in self.done_steps and not step.allow_start_if_complete:
            return _StepOutcome(COMPLETED, COMPLETED)
        record = self.repository.step_open(step.name, resume_from=self.resume.get(step.name))
        if record.status in (COMPLETED, "ABANDONED"):  # done in an earlier attempt
            return _StepOutcome(COMPLETED, COMPLETED)
        context = self._context(step.name, record)
        # The step's messages are lines of the attempt's log (execution/attempt_log.py), in
        # the deployment's language as the errors a worker writes.
        logger.info(gettext("step %(step)s started"), {"step": step.name})
        for listener in step.listeners:
            if hasattr(listener, "before_step"):
                listener.before_step(context)
        try:
            if isinstance(step, TaskletStep):
                self._tasklet(step, context, record)
            elif isinstance(step, ChunkStep):
                self._chunks(step, context, record)
            else:
                self._partitions(step, context, record)
            outcome = _StepOutcome(COMPLETED, context.exit_status or COMPLETED)
        except _Stopped:
            outcome = _StepOutcome(
                STOPPED,
                STOPPED,
                gettext("stopped at a chunk boundary in %(step)s") % {"step": step.name},
            )
        except _PartitionsEnded as ended:
            outcome = _StepOutcome(ended.status, ended.status, ended.error)
        except Exception as error:
            retryable = not isinstance(error, SkipLimitExceeded)
            outcome = _StepOutcome(FAILED, FAILED, traceback.format_exc(), retryable)
        for listener in step.listeners:
            if hasattr(listener, "after_step"):
                outcome.exit_status = listener.after_step(context, outcome.exit_status) or (
                    outcome.exit_status
                )
        self.repository.step_closed(
            record, status=outcome.status, exit_status=outcome.exit_status, error=outcome.error
        )
        _step_ended_log(step.name, record, outcome.status)
        return outcome

    def _context(self, step_name: str, record: StepRecord) -> StepContext:
        return StepContext(
            params=self.params, job_context=self.job_context, context=record.context,
            step_name=step_name, execution_id=self.execution_id,
            partition=record.context.get("partition", {}),
        )  # fmt: skip

    def _check_stop(self) -> None:
        """At a chunk boundary: stop if asked. Each checkpoint's statement brings the answer
        back (saved()); only the first chunk of a step asks the database itself."""
        if self._stop_asked or self.repository.stop_requested():
            raise _Stopped

    def saved(self, record: StepRecord) -> None:
        """Save the checkpoint (inside the chunk's transaction) and note a stop request."""
        self._stop_asked = self.repository.chunk_saved(record) or self._stop_asked

    def _tasklet(self, step: TaskletStep, context: StepContext, record: StepRecord) -> None:
        self._check_stop()
        while True:
            with transaction.atomic():
                status = step.tasklet(context)
                record.counts["commit_count"] += 1
                self.saved(record)
            if status in (None, RepeatStatus.FINISHED):
                return
            if self._stop_asked:
                raise _Stopped

    def _chunks(self, step: ChunkStep, context: StepContext, record: StepRecord) -> None:
        self._check_stop()
        reader = step.reader(context)
        processors = [_as_callable(processor) for processor in step.processors]
        writer = step.writer(context)
        opened = []
        try:
            for stream in (reader, writer):
                if isinstance(stream, ItemStream):
                    stream.open(record.context)
                    opened.append(stream)
            _items_total_count(reader, record)
            _ChunkLoop(self, step, context, record, reader, processors, writer, opened).run()
        finally:
            for stream in opened:  # close what did open, even if a later open failed
                stream.close()

    # --- partitions -------------------------------------------------------------------------

    def _partitions(self, step: PartitionStep, context: StepContext, record: StepRecord) -> None:
        if "partitions" not in record.context:
            plan = step.partitioner(context, step.grid_size)
            record.context["partitions"] = sorted(plan)
            record.context["plan"] = plan
            self.saved(record)
        to_run = self.repository.partitions_prepare(step.name, record.context["plan"])
        if to_run and self.launch_partitions:
            self.launch_partitions(step.name, len(to_run))
        # Work alongside the workers the partitions were sent to, so a lone worker slot
        # still finishes the step.
        while True:
            if self.run_one_partition(step) is not None:
                continue
            summary = self.repository.partitions_summary(step.name)
            if not summary.get(ExecutionStatus.QUEUED) and not summary.get(ExecutionStatus.STARTED):
                break
            self.repository.partitions_requeue_silent(step.name, silent_for=self.partition_silence)
            time.sleep(PARTITION_POLL_SECONDS)
        record.counts = self.repository.partition_totals(step.name)
        if summary.get(FAILED):
            raise _PartitionsEnded(
                FAILED,
                gettext("%(count)s partition(s) of %(step)s failed")
                % {"count": summary[FAILED], "step": step.name},
            )
        if summary.get(STOPPED):
            raise _PartitionsEnded(
                STOPPED, gettext("partitions of %(step)s stopped") % {"step": step.name}
            )

    def run_one_partition(self, step: PartitionStep) -> _StepOutcome | None:
        """Claim one waiting partition of `step` and run it here; None if none was waiting."""
        record = self.repository.partition_claim(step.name)
        if record is None:
            return None
        inner = step.step
        context = self._context(inner.name, record)
        try:
            with self.partition_heartbeat(record.pk):
                if isinstance(inner, TaskletStep):
                    self._tasklet(inner, context, record)
                else:
                    self._chunks(inner, context, record)
            outcome = _StepOutcome(COMPLETED, context.exit_status or COMPLETED)
        except _Stopped:
            outcome = _StepOutcome(STOPPED, STOPPED)
        except Exception as error:
            retryable = not isinstance(error, SkipLimitExceeded)
            outcome = _StepOutcome(FAILED, FAILED, traceback.format_exc(), retryable)
        self.repository.step_closed(
            record, status=outcome.status, exit_status=outcome.exit_status, error=outcome.error
        )
        return outcome


def _items_total_count(reader: Any, record: StepRecord) -> None:
    """The step's total for its progress, saved in its context with the next chunk: what it
    read so far (an earlier attempt of this execution) and what the reader has left, counted
    now. Never a count carried from another run: a restart's context comes from the run it
    resumes, whose input may differ, so the key is dropped unless counted again."""
    record.context.pop(ITEMS_TOTAL_KEY, None)
    if isinstance(reader, CountingReader):
        remaining = reader.items_remaining()
        if remaining is not None:
            done = record.counts["read_count"] + record.counts["read_skip_count"]
            record.context[ITEMS_TOTAL_KEY] = done + remaining


def _step_ended_log(name: str, record: StepRecord, status: str) -> None:
    counts = record.counts
    logger.log(
        logging.INFO if status == COMPLETED else logging.WARNING,
        gettext(
            "step %(step)s %(status)s: %(read)s read, %(written)s written, %(filtered)s "
            "filtered, %(skipped)s skipped, %(commits)s commits, %(rollbacks)s rollbacks"
        ),
        {
            "step": name, "status": status, "read": counts["read_count"],
            "written": counts["write_count"], "filtered": counts["filter_count"],
            "skipped": record.skips, "commits": counts["commit_count"],
            "rollbacks": counts["rollback_count"],
        },
    )  # fmt: skip


class _PartitionsEnded(Exception):
    def __init__(self, status: str, error: str) -> None:
        super().__init__(error)
        self.status, self.error = status, error


def _as_callable(processor) -> Callable[[Any], Any]:
    return processor.process if hasattr(processor, "process") else processor


def _retried(process: Callable[[Any], Any], retry: RetryPolicy) -> Callable[[Any], Any]:
    """The processor, each call of it under the step's retry policy if it has one."""
    if not retry.exceptions:
        return process
    return lambda item: retry.call(lambda: process(item))


def _chained(processes: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    """The processors applied in order, as one call; None (filtered) ends the chain."""
    if len(processes) == 1:
        return processes[0]

    def chained(item: Any) -> Any:
        for process in processes:
            if item is None:
                return None
            item = process(item)
        return item

    return chained


@dataclass
class _ReadChunk:
    """A chunk read ahead (a step with overlap_writes), and the checkpoint it commits with."""

    outputs: list
    exhausted: bool
    counts: dict[str, int]  # the read-side counters once it was read
    positions: dict  # what the streams saved of their positions once it was read
    context: dict  # the step's context then, with those positions


class _ChunkLoop:
    def __init__(self, runner: JobRunner, step: ChunkStep, context: StepContext,
                 record: StepRecord, reader, processors, writer, streams) -> None:  # fmt: skip
        self.runner, self.step, self.context, self.record = runner, step, context, record
        self.reader, self.processors, self.writer = reader, processors, writer
        self.streams = streams
        self.counts = record.counts
        self.item_listeners = [x for x in step.listeners if hasattr(x, "after_read")]
        self.skip_listeners = [x for x in step.listeners if hasattr(x, "on_skip_in_read")]
        self.chunk_listeners = [x for x in step.listeners if hasattr(x, "before_chunk")]
        self.process_item = _chained([_retried(p, step.retry) for p in processors])

    def run(self) -> None:
        # A writer that saves a position of its own must save it after its chunk's write,
        # which the read-ahead checkpoint cannot wait for: such a step runs chunk by chunk.
        if (self.step.overlap_writes and hasattr(self.writer, "stream")
                and self.writer not in self.streams):  # fmt: skip
            self._run_overlapped()
            return
        exhausted = False
        while not exhausted:
            if self.runner._stop_asked:
                raise _Stopped
            for listener in self.chunk_listeners:
                listener.before_chunk(self.context)
            items, exhausted = self._read_chunk()
            outputs = self._process(items)
            self._write_chunk(outputs)

    def _write_chunk(self, outputs: list, checkpoint: _ReadChunk | None = None) -> None:
        try:
            self._write_and_commit(outputs, checkpoint)
        except Exception as error:
            for listener in self.chunk_listeners:
                listener.after_chunk_error(self.context, error)
            raise
        for listener in self.chunk_listeners:
            listener.after_chunk(self.context)

    def _run_overlapped(self) -> None:
        """Chunk k's rows go to the writer's stream, then chunk k+1 is read and processed while
        the database takes them in, then chunk k's checkpoint is saved and it commits. The
        checkpoint is the one taken when chunk k had been read; a stop puts the read-side
        counters back to it, so that a stopped step saves what committed."""
        chunk = self._read_ahead()
        while True:
            following, read_error = None, None
            write_side = {name: self.counts[name] for name in WRITE_COUNTERS}
            try:
                with transaction.atomic():
                    with self.writer.stream() as write_part:
                        write_part(chunk.outputs)
                        if not chunk.exhausted:
                            try:
                                following = self._read_ahead()
                            except Exception as error:  # after this chunk commits, as in order
                                read_error = error
                    self._save_chunk(len(chunk.outputs), chunk)
            except Exception:
                # The write, the checkpoint or the commit failed: the usual way, retried and
                # then scanned item by item, with this chunk's checkpoint.
                self.counts.update(write_side)
                self.counts["rollback_count"] += 1
                self._write_chunk(chunk.outputs, chunk)
            else:
                for listener in self.item_listeners:
                    listener.after_write(chunk.outputs)
                for listener in self.chunk_listeners:
                    listener.after_chunk(self.context)
            self.record.context.update(chunk.positions)  # the streams' positions committed
            if read_error is not None:
                raise read_error
            if chunk.exhausted:
                return
            if self.runner._stop_asked:
                self.counts.update({name: chunk.counts[name] for name in READ_COUNTERS})
                raise _Stopped
            chunk = following or self._read_ahead()

    def _read_ahead(self) -> _ReadChunk:
        """The next chunk, read and processed, with the checkpoint it commits with: the step's
        context holding the streams' positions once it was read, and its read-side counters."""
        for listener in self.chunk_listeners:
            listener.before_chunk(self.context)
        items, exhausted = self._read_chunk()
        outputs = self._process(items)
        positions: dict = {}
        for stream in self.streams:
            stream.update(positions)
        context = {**copy.deepcopy(self.record.context), **positions}
        counts = {name: self.counts[name] for name in READ_COUNTERS}
        return _ReadChunk(outputs, exhausted, counts, positions, context)

    def _skip(self, error: BaseException) -> None:
        if not self.step.skip.skippable(error):
            raise error
        if self.record.skips >= self.step.skip.limit:
            raise SkipLimitExceeded(
                gettext("skip limit %(limit)s reached in %(step)s: %(error)s")
                % {"limit": self.step.skip.limit, "step": self.step.name, "error": repr(error)}
            ) from error

    # The two loops below run for every item: what stays the same within a chunk is bound to a
    # local before them, and a step without item listeners iterates over empty lists.

    def _read_chunk(self) -> tuple[list, bool]:
        """Up to chunk_size items, and whether the reader is exhausted. A read that fails and
        is skipped takes no place in the chunk."""
        items: list = []
        read, append, size = self.reader.read, items.append, self.step.chunk_size
        after_read = [listener.after_read for listener in self.item_listeners]
        exhausted = False
        while len(items) < size:
            try:
                item = read()
            except Exception as error:
                self._read_failed(error)
                continue
            if item is None:
                exhausted = True
                break
            for listener in after_read:
                listener(item)
            append(item)
        self.counts["read_count"] += len(items)
        return items, exhausted

    def _read_failed(self, error: Exception) -> None:
        for listener in self.item_listeners:
            listener.on_read_error(error)
        self._skip(error)
        self.counts["read_skip_count"] += 1
        for listener in self.skip_listeners:
            listener.on_skip_in_read(error)

    def _process(self, items: list) -> list:
        if not self.processors and not self.item_listeners:
            return items
        outputs: list = []
        process, append = self.process_item, outputs.append
        after_process = [listener.after_process for listener in self.item_listeners]
        filtered = 0
        try:
            for item in items:
                try:
                    result = process(item)
                except Exception as error:
                    self._process_failed(item, error)
                    continue
                for listener in after_process:
                    listener(item, result)
                if result is None:
                    filtered += 1
                else:
                    append(result)
        finally:  # a chunk that fails still counts what it filtered, as the step ends
            self.counts["filter_count"] += filtered
        return outputs

    def _process_failed(self, item: Any, error: Exception) -> None:
        for listener in self.item_listeners:
            listener.on_process_error(item, error)
        self._skip(error)
        self.counts["process_skip_count"] += 1
        for listener in self.skip_listeners:
            listener.on_skip_in_process(item, error)

    def _commit(self, outputs: list, checkpoint: _ReadChunk | None = None) -> None:
        with transaction.atomic():
            if outputs:
                self.writer.write(outputs)
            self._save_chunk(len(outputs), checkpoint)

    def _save_chunk(self, written: int, checkpoint: _ReadChunk | None = None) -> None:
        """The counters and the checkpoint, in the chunk's transaction: the streams' positions
        now, or those a read-ahead chunk was read with (and its read-side counters)."""
        self.counts["write_count"] += written
        self.counts["commit_count"] += 1
        if checkpoint is None:
            for stream in self.streams:
                stream.update(self.record.context)
            self.runner.saved(self.record)
            return
        counts = {**self.counts, **checkpoint.counts}
        self.runner.saved(replace(self.record, context=checkpoint.context, counts=counts))

    def _write_and_commit(self, outputs: list, checkpoint: _ReadChunk | None = None) -> None:
        saved = dict(self.counts)
        context = copy.deepcopy(self.record.context)
        try:
            self.step.retry.call(lambda: self._attempt(outputs, saved, context, checkpoint))
        except Exception as error:
            for listener in self.item_listeners:
                listener.on_write_error(outputs, error)
            if not outputs or not self.step.skip.skippable(error):
                raise
            logger.warning(
                gettext("a chunk of %(step)s failed to write (%(error)s): writing it item by item"),
                {"step": self.step.name, "error": error},
            )
            self._scan(outputs, checkpoint)
            return
        for listener in self.item_listeners:
            listener.after_write(outputs)

    def _attempt(
        self, outputs: list, saved: dict, context: dict, checkpoint: _ReadChunk | None
    ) -> None:
        try:
            self._commit(outputs, checkpoint)
        except Exception:
            # The streams moved their positions into the context before the commit failed:
            # put back the last committed checkpoint, or a restart would skip this chunk.
            self.record.context.clear()
            self.record.context.update(copy.deepcopy(context))
            self.counts.clear()
            self.counts.update(saved)
            self.counts["rollback_count"] += 1
            saved["rollback_count"] = self.counts["rollback_count"]
            raise

    def _scan(self, outputs: list, checkpoint: _ReadChunk | None) -> None:
        """Write the chunk item by item, skipping those that fail, then commit the checkpoint."""
        for item in outputs:
            saved = dict(self.counts)
            try:
                with transaction.atomic():
                    self.writer.write([item])
                    self.counts["write_count"] += 1
            except Exception as error:
                self.counts.clear()
                self.counts.update(saved)
                self.counts["rollback_count"] += 1
                self._skip(error)
                self.counts["write_skip_count"] += 1
                for listener in self.skip_listeners:
                    listener.on_skip_in_write(item, error)
        self._commit([], checkpoint)
