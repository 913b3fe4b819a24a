"""Executions: lists, one with its attempts and steps, counts by status, recent failures, and
what an operator may do with one."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, F, Prefetch, Q, QuerySet, Window
from django.db.models.functions import RowNumber
from django.utils.translation import gettext as _

from batchjobs.errors import NotFound
from batchjobs.models import (
    AttemptLogLine,
    BatchAttempt,
    BatchJob,
    BatchLog,
    ExecutionStatus,
    StepExecution,
)
from batchjobs.models.execution import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    RESTARTABLE_STATUSES,
    STOPPABLE_STATUSES,
)

from .attempt_log import attempt_log_lines


def execution_list(
    *,
    queryset: QuerySet[BatchLog] | None = None,
    job_id: int | None = None,
    job_name: str | None = None,
    schedule_id: int | None = None,
    statuses: Iterable[str] = (),
    triggers: Iterable[str] = (),
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    set_aside: bool | None = None,
) -> QuerySet[BatchLog]:
    """Executions, newest first, narrowed by whichever filters are given (None/empty: all)."""
    executions = queryset if queryset is not None else BatchLog.objects.all()
    executions = executions.select_related("job", "created_by")
    if job_id is not None:
        executions = executions.filter(job_id=job_id)
    if job_name:
        executions = executions.filter(job__name=job_name)
    if schedule_id is not None:
        executions = executions.filter(schedule_id=schedule_id)
    statuses, triggers = list(statuses), list(triggers)
    if statuses:
        executions = executions.filter(status__in=statuses)
    if triggers:
        executions = executions.filter(trigger__in=triggers)
    if created_from is not None:
        executions = executions.filter(created_at__gte=created_from)
    if created_to is not None:
        executions = executions.filter(created_at__lt=created_to)
    if set_aside is not None:
        executions = executions.filter(set_aside_at__isnull=not set_aside)
    return executions.order_by("-created_at", "-id")


# A search's words are matched against at most this many job names (their ids go in the query).
SEARCH_JOBS_MAX = 1000


def execution_search(*, queryset: QuerySet[BatchLog], words: Iterable[str]) -> QuerySet[BatchLog]:
    """Executions whose error, worker or job name contains each word (any case), or whose id
    or idempotency key is the word. Each condition is on the executions' own columns, so
    PostgreSQL answers the OR from one index per column (the trigram indexes on error and
    worker, the job index) instead of scanning every row: a job name matches by the ids of the
    jobs it names, looked up first."""
    for word in words:
        job_ids = BatchJob.objects.filter(name__icontains=word).values_list("pk", flat=True)
        condition = (
            Q(error__icontains=word)
            | Q(worker__icontains=word)
            | Q(idempotency_key=word)
            | Q(job_id__in=list(job_ids[:SEARCH_JOBS_MAX]))
        )
        number = word.removeprefix("#")
        if number.isascii() and number.isdigit() and len(number) <= 18:
            condition |= Q(pk=int(number))
        queryset = queryset.filter(condition)
    return queryset


def execution_get(*, execution_id: int) -> BatchLog:
    """One execution with its attempts and steps."""
    execution = (
        BatchLog.objects.select_related("job", "created_by")
        .prefetch_related(
            Prefetch("attempt_rows", queryset=BatchAttempt.objects.order_by("number")),
            Prefetch("steps", queryset=StepExecution.objects.order_by("pk")),
        )
        .filter(pk=execution_id)
        .first()
    )
    if execution is None:
        raise NotFound(_("no execution %(id)s") % {"id": execution_id})
    return execution


def execution_counts(*, since: datetime | None = None) -> dict[str, int]:
    """Executions by status, every status listed (0 included): all of them, or with `since`
    those waiting or running now whatever their age and those that ended since `since`, by
    when they were created."""
    if since is None:
        groups = [BatchLog.objects.all()]
    else:
        # Naming every final status lets PostgreSQL use the (status, created_at) index.
        groups = [
            BatchLog.objects.filter(status__in=ACTIVE_STATUSES),
            BatchLog.objects.filter(status__in=FINAL_STATUSES, created_at__gte=since),
        ]
    counts = dict.fromkeys(ExecutionStatus.values, 0)
    for rows in groups:
        counts.update(
            # count(*), not count(id): PostgreSQL answers it from the (status, created_at) index
            # alone (an index-only scan) instead of reading every row for its id.
            rows.order_by().values("status").annotate(n=Count("*")).values_list("status", "n")
        )
    return counts


def recent_failures(*, limit: int = 10) -> list[BatchLog]:
    return list(
        BatchLog.objects.select_related("job")
        .filter(status=ExecutionStatus.FAILED)
        .order_by("-created_at", "-pk")[:limit]
    )


# A one-line error is cut here (an ellipsis ends it): a line with no spaces, say a URL or a
# payload, otherwise fills a phone's screen. The error in full is shown beside it.
ERROR_LINE_MAX_CHARS = 200


def error_summary(error: str) -> str:
    """The line of an execution's error that names it: a traceback's last line, at most
    ERROR_LINE_MAX_CHARS long."""
    lines = (error or "").strip().splitlines()
    line = lines[-1] if lines else ""
    if len(line) > ERROR_LINE_MAX_CHARS:
        return line[: ERROR_LINE_MAX_CHARS - 1].rstrip() + "…"
    return line


def execution_operations(*, execution: BatchLog) -> list[str]:
    """The operator's actions that the execution's status allows."""
    operations = []
    if execution.status in STOPPABLE_STATUSES:
        operations.append("stop")
    if execution.status in RESTARTABLE_STATUSES:
        operations += ["restart", "abandon"]
    return operations


# --- the execution's page ----------------------------------------------------------------------

# Log lines an attempt shows when the page opens (its last ones), and at most per later fetch.
LOG_LINES_SHOWN = 200
LOG_LINES_FETCHED = 500
# Skipped items listed on the page: the readers record a capped number per step already.
SKIPPED_ITEMS_SHOWN = 500
# Steps (partitions included) listed on the page and in each live update.
STEPS_SHOWN = 100


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt as the execution's page shows it: its last log lines (oldest first), how
    many came before them, and how long after the previous attempt ended it started (the
    backoff the operator wants to see)."""

    attempt: BatchAttempt
    lines: list[AttemptLogLine]
    earlier_lines: int
    gap_seconds: float | None

    @property
    def last_line(self) -> int:
        return self.lines[-1].number if self.lines else self.earlier_lines


@dataclass(frozen=True)
class SkippedItem:
    """An item a batch step skipped, as a skip listener recorded it (e.g. a CSV's bad line)."""

    step: str
    line: Any
    reason: str
    text: str


def execution_for_page(
    *, execution_id: int, queryset: QuerySet[BatchLog] | None = None
) -> BatchLog | None:
    """The execution with everything its header names (job, who, schedule, upstream, backfill,
    restarted run) in one query."""
    executions = queryset if queryset is not None else BatchLog.objects.all()
    return (
        executions.select_related(
            "job", "created_by", "schedule", "triggered_by__job", "backfill", "restart_of"
        )
        .filter(pk=execution_id)
        .first()
    )


def attempt_records(
    *, execution: BatchLog, after: int = 0, shown_up_to: int | None = None
) -> list[AttemptRecord]:
    """The execution's attempts numbered above `after`, each with its last LOG_LINES_SHOWN log
    lines: two queries whatever the number of attempts and lines (three with the gap before the
    first). With `shown_up_to`, a page already shows the first of them (number `after` + 1) up
    to that line: it comes with its lines after that one instead (at most LOG_LINES_FETCHED), so
    a live update reads only what is new, not the attempt's tail again."""
    attempts = list(
        BatchAttempt.objects.filter(execution=execution, number__gt=after).order_by("number")
    )
    if not attempts:
        return []
    lines: dict[int, list[AttemptLogLine]] = {attempt.pk: [] for attempt in attempts}
    shown = attempts[0] if shown_up_to is not None and attempts[0].number == after + 1 else None
    if shown is not None:
        lines[shown.pk] = attempt_log_lines(
            shown.pk, after_number=shown_up_to or 0, limit=LOG_LINES_FETCHED
        )
    tailed = [attempt for attempt in attempts if attempt is not shown]
    if tailed:
        newest_first = Window(
            RowNumber(), partition_by=[F("attempt_id")], order_by=F("number").desc()
        )
        tail = (
            AttemptLogLine.objects.filter(attempt__in=tailed)
            .annotate(from_end=newest_first)
            .filter(from_end__lte=LOG_LINES_SHOWN)
            .order_by("attempt_id", "number")
        )
        for line in tail:
            lines[line.attempt_id].append(line)
    previous_end = None
    if after:
        previous_end = (
            BatchAttempt.objects.filter(execution=execution, number=after)
            .values_list("finished_at", flat=True)
            .first()
        )
    records = []
    for attempt in attempts:
        given = lines[attempt.pk]
        gap = None
        if previous_end is not None:
            gap = (attempt.started_at - previous_end).total_seconds()
        if attempt is shown:
            earlier = shown_up_to or 0
        else:
            # Lines are numbered from 1 without gaps: those before the first given.
            earlier = given[0].number - 1 if given else 0
        records.append(
            AttemptRecord(attempt=attempt, lines=given, earlier_lines=earlier, gap_seconds=gap)
        )
        previous_end = attempt.finished_at
    return records


def attempt_log_before(
    *, execution: BatchLog, number: int, before_line: int
) -> list[AttemptLogLine]:
    """The LOG_LINES_FETCHED lines of the execution's attempt `number` just before line
    `before_line` (the page's "show earlier"), oldest first."""
    earlier = AttemptLogLine.objects.filter(
        attempt__execution=execution, attempt__number=number, number__lt=before_line
    ).order_by("-number")[:LOG_LINES_FETCHED]
    return list(reversed(earlier))


def execution_steps(*, execution: BatchLog) -> tuple[list[StepExecution], int]:
    """The execution's first STEPS_SHOWN steps in the order they started (without their
    execution contexts, which may be large), and how many it has in all."""
    steps = list(
        StepExecution.objects.filter(execution=execution)
        .defer("execution_context")
        .order_by("pk")[: STEPS_SHOWN + 1]
    )
    if len(steps) <= STEPS_SHOWN:
        return steps, len(steps)
    return steps[:STEPS_SHOWN], StepExecution.objects.filter(execution=execution).count()


def _recorded_skips(context: Any, depth: int = 2) -> Iterator[dict]:
    """Entries a skip listener kept in an execution context: a list of objects with a
    "reason" (BadLineReport's {"line", "reason", "text"}), under any key, up to `depth` deep
    (a job's context may sum its steps' up under a key of its own)."""
    if not isinstance(context, dict) or depth == 0:
        return
    for value in context.values():
        if (
            isinstance(value, list)
            and value
            and all(isinstance(entry, dict) and "reason" in entry for entry in value)
        ):
            yield from value
        elif isinstance(value, dict):
            yield from _recorded_skips(value, depth - 1)


def _skipped_item(step: str, entry: dict) -> SkippedItem:
    return SkippedItem(
        step=step,
        line=entry.get("line", entry.get("item", "")),
        reason=str(entry.get("reason", "")),
        text=str(entry.get("text", "")),
    )


def execution_skipped_items(*, execution: BatchLog) -> list[SkippedItem]:
    """The items the execution's steps skipped and recorded (each partition its own), in
    line order; or, with no step recording any, those the job's own context sums up."""
    items = []
    steps = StepExecution.objects.filter(execution=execution).order_by("pk")
    for name, partition, context in steps.values_list(
        "step_name", "partition", "execution_context"
    ):
        label = f"{name} [{partition}]" if partition else name
        items += [_skipped_item(label, entry) for entry in _recorded_skips(context)]
    if not items:
        items = [_skipped_item("", entry) for entry in _recorded_skips(execution.execution_context)]
    items.sort(key=_line_order)
    return items[:SKIPPED_ITEMS_SHOWN]


def _line_order(item: SkippedItem) -> tuple[int, int, str]:
    """Numbered lines first, by number (partitions of one file interleave), then the rest."""
    if isinstance(item.line, int):
        return (0, item.line, "")
    return (1, 0, str(item.line))
