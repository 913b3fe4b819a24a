"""The log lines of an attempt: what the handler or batch job logs while the attempt runs (its
readers, processors, writers and listeners, the engine's step messages, Python ``logging`` at
INFO and above) and the HTTP call's request and answer, kept as AttemptLogLine rows so that the
console can follow a running attempt and read a finished one.

One logging.Handler on the root logger serves every attempt of the process; the attempt a
record belongs to is the one in the emitting context (a contextvar: a thread, or a greenlet of
the I/O lane, each has its own), so many attempts in one process never mix their lines.

Lines are written in batches: by a writer thread every FLUSH_SECONDS (sooner once
FLUSH_LINES wait), never inside the job's own transactions, and the rest when the attempt ends,
before its outcome is recorded. An attempt that logs nothing costs no query. Secrets are masked
before a line is kept (the job's secret header values, the values of its secret-looking
parameters: rules.masking), each line is cut at LINE_MAX_CHARS, and an attempt keeps at most
BATCHJOBS_ATTEMPT_LOG_MAX_LINES lines, counting the others in log_lines_dropped. Writing lines
never fails a run: a failed write is logged and the run goes on.
"""

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import connection, connections, transaction

from batchjobs.models import AttemptLogLine, BatchAttempt, BatchJob
from batchjobs.rules.masking import SECRET_MASK, secret_param_values
from batchjobs.secrets import SecretUnreadable, secret_decrypt

from .hot_sql import ATTEMPT, Table

logger = logging.getLogger(__name__)

# The level from which records are kept: INFO, as the root logger's default (DJANGO_LOG_LEVEL).
CAPTURE_LEVEL = logging.INFO
LINE_MAX_CHARS = 2000
LOGGER_MAX_CHARS = AttemptLogLine._meta.get_field("logger").max_length or 200
CUT_MARK = " …"
FLUSH_SECONDS = 1.0
FLUSH_LINES = 50
# A bound for BATCHJOBS_ATTEMPT_LOG_MAX_LINES, whatever the environment says.
MAX_LINES_CEILING = 100_000

LINE = Table(AttemptLogLine)
_FORMATTER = logging.Formatter("%(message)s")


def max_lines() -> int:
    return max(0, min(settings.BATCHJOBS_ATTEMPT_LOG_MAX_LINES, MAX_LINES_CEILING))


@dataclass(frozen=True)
class _Line:
    number: int
    logged_at: datetime
    level: int
    logger: str
    message: str


class AttemptLog:
    """The lines of one running attempt, numbered as they come, waiting to be written."""

    def __init__(self, *, execution_id: int, attempt: int, job: BatchJob, params: Any) -> None:
        self.execution_id, self.attempt = execution_id, attempt
        self._job, self._params = job, params
        self._secrets: list[str] | None = None  # read at the first line: most attempts have none
        self._lock = threading.Lock()
        # Held while a batch is written: the last flush waits for the writer thread's, so
        # that every line is in before the attempt's outcome.
        self._writing = threading.Lock()
        self._pending: list[_Line] = []
        self._numbered = 0
        self._max_lines = max_lines()
        self.dropped = 0
        self._dropped_written = 0
        self._flushed_at = time.monotonic()

    def add(self, *, level: int, logger_name: str, message: str, created: float) -> None:
        if self._numbered < self._max_lines:  # masking a line that will be dropped is waste
            message = self.masked(message)
        with self._lock:
            if self._numbered >= self._max_lines:
                self.dropped += 1
                return
            self._numbered += 1
            self._pending.append(
                _Line(
                    number=self._numbered,
                    logged_at=datetime.fromtimestamp(created, tz=UTC),
                    level=level,
                    logger=logger_name[:LOGGER_MAX_CHARS],
                    message=message,
                )
            )
            due = len(self._pending) >= FLUSH_LINES
        if due:
            _writer.wake()

    def masked(self, text: str) -> str:
        """`text` with every secret of the run masked, then cut at LINE_MAX_CHARS (masked
        first: a cut could leave part of a secret that no longer matches)."""
        if self._secrets is None:
            self._secrets = _run_secrets(self._job, self._params)
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, SECRET_MASK)
        # PostgreSQL's text refuses NUL: one such character would lose the whole batch.
        text = text.replace("\x00", "\\x00")
        if len(text) > LINE_MAX_CHARS:
            text = text[: LINE_MAX_CHARS - len(CUT_MARK)] + CUT_MARK
        return text

    def due(self, now: float) -> bool:
        with self._lock:
            waiting = bool(self._pending) or self.dropped != self._dropped_written
            return waiting and (
                len(self._pending) >= FLUSH_LINES or now - self._flushed_at >= FLUSH_SECONDS
            )

    def flush(self) -> None:
        """Write the lines waiting (and the count of dropped ones, if it grew), on this
        thread's connection, outside any transaction of the job. Never raises."""
        with self._writing:
            self._write_pending()

    def _write_pending(self) -> None:
        with self._lock:
            lines, self._pending = self._pending, []
            dropped = self.dropped if self.dropped != self._dropped_written else None
            self._flushed_at = time.monotonic()
        if not lines and dropped is None:
            return
        try:
            # Each statement on its own in autocommit (a worker's case: one round trip for the
            # lines of an HTTP attempt, not three); within a caller's transaction, a savepoint,
            # so that a failed write leaves it usable for the outcome that follows.
            with transaction.atomic() if connection.in_atomic_block else nullcontext():
                if lines:
                    _lines_insert(self.execution_id, self.attempt, lines)
                if dropped is not None:
                    BatchAttempt.objects.filter(
                        execution_id=self.execution_id, number=self.attempt
                    ).update(log_lines_dropped=dropped)
                    self._dropped_written = dropped
        except Exception:  # a log line must never cost a run
            logger.warning(
                "execution %s attempt %s: %s log line(s) could not be written",
                self.execution_id,
                self.attempt,
                len(lines),
                exc_info=True,
            )


def _run_secrets(job: BatchJob, params: Any) -> list[str]:
    """The values a line must not show: the job's secret header values, decrypted, and the
    values of its secret-looking parameters (the run's and the job's); longest first, so that
    one containing another is masked whole."""
    found = {*secret_param_values(params), *secret_param_values(job.params)}
    for header in job.http_headers or []:
        if isinstance(header, dict) and header.get("secret") and header.get("value"):
            value = str(header["value"])
            found.add(value)
            with suppress(SecretUnreadable):
                found.add(secret_decrypt(value))
    return sorted((value for value in found if value), key=len, reverse=True)


def _lines_insert(execution_id: int, attempt: int, lines: list[_Line]) -> None:
    """One INSERT for the lines, the attempt's id found by the statement itself (the claim
    does not read it back, and an attempt without lines never needs it); on PostgreSQL its
    commit does not wait for the disk."""
    columns = (LINE.number, LINE.logged_at, LINE.level, LINE.logger, LINE.message)
    if connection.vendor == "postgresql":
        sql = (
            f"INSERT INTO {LINE} ({LINE.attempt}, {', '.join(columns)}) "
            f"SELECT a.{ATTEMPT.id}, v.* FROM {ATTEMPT} a, "
            "unnest(%s::integer[], %s::timestamptz[], %s::smallint[], %s::text[], %s::text[]) "
            f"AS v WHERE a.{ATTEMPT.execution} = %s AND a.{ATTEMPT.number} = %s "
            # Committed without waiting for the disk (as a chunk's checkpoint is): a crash
            # may lose the last moment's lines, never the run's own record.
            "AND set_config('synchronous_commit', 'off', true) = 'off'"
        )
        values: list[Any] = [
            [line.number for line in lines],
            [line.logged_at for line in lines],
            [line.level for line in lines],
            [line.logger for line in lines],
            [line.message for line in lines],
            execution_id,
            attempt,
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, values)
        return
    attempt_id = (
        BatchAttempt.objects.filter(execution_id=execution_id, number=attempt)
        .values_list("pk", flat=True)
        .first()
    )
    if attempt_id is None:
        return
    AttemptLogLine.objects.bulk_create(
        AttemptLogLine(
            attempt_id=attempt_id, number=line.number, logged_at=line.logged_at,
            level=line.level, logger=line.logger, message=line.message,
        )
        for line in lines
    )  # fmt: skip


_current: ContextVar[AttemptLog | None] = ContextVar("batchjobs_attempt_log", default=None)


class _CaptureHandler(logging.Handler):
    """On the root logger: hands each record to the attempt running in the emitting context,
    if any."""

    def emit(self, record: logging.LogRecord) -> None:
        log = _current.get()
        if log is None or record.name == __name__:
            return
        try:
            log.add(
                level=record.levelno,
                logger_name=record.name,
                message=_FORMATTER.format(record),
                created=record.created,
            )
        except Exception:
            self.handleError(record)


_handler = _CaptureHandler(level=CAPTURE_LEVEL)


class _Writer:
    """One thread per worker process writes the lines of every running attempt, a batch per
    attempt every FLUSH_SECONDS, or as soon as one has FLUSH_LINES waiting."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logs: set[AttemptLog] = set()
        self._wake = threading.Event()
        self._owner_pid: int | None = None

    def add(self, log: AttemptLog) -> None:
        with self._lock:
            self._logs.add(log)
            if self._owner_pid != os.getpid():  # first use in this (possibly forked) process
                self._owner_pid = os.getpid()
                threading.Thread(
                    target=self._loop, name="batchjobs-attempt-log", daemon=True
                ).start()

    def remove(self, log: AttemptLog) -> None:
        with self._lock:
            self._logs.discard(log)

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while True:
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            try:
                self._flush_due()
            except Exception:  # whatever happens, the thread must go on for the next batch
                logger.exception("writing attempt log lines failed")

    def _flush_due(self) -> None:
        with self._lock:
            logs = list(self._logs)
        now = time.monotonic()
        due = [log for log in logs if log.due(now)]
        for log in due:
            log.flush()
        if not logs or due:
            # Hold no database session between batches (an I/O lane's pool is small).
            connections.close_all()


_writer = _Writer()


@contextmanager
def attempt_log(
    *, execution_id: int, attempt: int, job: BatchJob, params: Any
) -> Iterator[AttemptLog]:
    """Keep what the code run inside logs as the lines of attempt `attempt` of the execution;
    the last lines are written when the block ends."""
    root = logging.getLogger()
    if _handler not in root.handlers:  # once per process (and again if logging is set up anew)
        root.addHandler(_handler)
    log = AttemptLog(execution_id=execution_id, attempt=attempt, job=job, params=params)
    token = _current.set(log)
    _writer.add(log)
    try:
        yield log
    finally:
        _current.reset(token)
        _writer.remove(log)
        log.flush()


def attempt_log_note(message: str, *, level: int = logging.INFO, logger_name: str) -> None:
    """Add a line to the running attempt's log, if any, without going through logging (and
    the worker's console): the HTTP call's request and answer."""
    log = _current.get()
    if log is not None:
        log.add(level=level, logger_name=logger_name, message=message, created=time.time())


# Lines deleted per statement (each its own transaction) when their executions expire.
PURGE_BATCH_LINES = 10_000


def attempt_log_purge(*, execution_ids: list[int]) -> int:
    """Delete the log lines of these executions' attempts, PURGE_BATCH_LINES per statement,
    before the executions go: their cascade then finds no lines, and no transaction holds the
    locks of a million lines. Returns how many were deleted."""
    deleted = 0
    lines = AttemptLogLine.objects.filter(attempt__execution_id__in=execution_ids)
    while True:
        batch = list(lines.values_list("pk", flat=True)[:PURGE_BATCH_LINES])
        if not batch:
            return deleted
        count, _ = AttemptLogLine.objects.filter(pk__in=batch).delete()
        deleted += count
