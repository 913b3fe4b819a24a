"""Runs started by another run's end (job dependencies), exactly once (DESIGN.md §4, invariant 13).

Every transition that makes an execution final (a worker's or the reaper's finish, the reaper's
and the relay's set-aside, an operator's stop of a queued run and abandon: all in lifecycle.py)
calls dependents_start in the SAME transaction as its status update. So the downstream rows
commit with the upstream's end or not at all: a worker or beat killed between the two leaves
nothing half-done, and a downstream message lost after the commit is resent by the relay like
any other QUEUED execution's (invariant 4). Each downstream row carries a start key, unique in
the database, and is written with INSERT ... ON CONFLICT DO NOTHING, so a second call (a
repeated end, two racing callers, abandoning a FAILED run that already started its downstream
jobs) starts nothing more:

- upstream_mode "any": "dep:<edge id>:<upstream execution id>", one run per edge and upstream
  execution;
- upstream_mode "all" (fan-in): "fanin:<downstream job id>:<logical time, ISO, UTC>", one run
  once every upstream job has an execution of that logical time that met its edge's condition.
  The downstream job's row is locked while this is judged, so two upstream ends committing at
  once cannot each miss the other.

Which ends count: COMPLETED meets "success", FAILED "failure"; "always" is met by COMPLETED,
FAILED, STOPPED and ABANDONED. SKIPPED starts nothing: a fire a policy declined never ran, so it
has no result to hand on and no period it processed.

The downstream run gets the upstream's logical time and data interval, and its job's params
with `upstream` (fan-in: `upstreams`, one per upstream job): the execution id, job name, status,
logical time and result (left out past UPSTREAM_RESULT_MAX_BYTES, `result_truncated` saying so).
A handler or batch job receives `upstream` / `upstreams` as a parameter only when its parameter
schema declares it (job_params_taken): the built-in handlers refuse unknown parameters, and any
of them may be started by a dependency. The row keeps them either way.
A disabled downstream job gets its run recorded SKIPPED with the reason, so the start is
accounted for once; the overlap policy applies at the claim, as for any run.
"""

import json
import logging
from datetime import UTC, datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Field
from django.db.models.functions import Coalesce
from django.utils.translation import gettext

from batchjobs.batch.registry import batch_job_get
from batchjobs.handlers.registry import handler_get
from batchjobs.models import (
    BatchJob,
    BatchLog,
    DependencyCondition,
    ExecutionStatus,
    JobDependency,
    JobKind,
    OverlapPolicy,
    Trigger,
    UpstreamMode,
)
from batchjobs.models.clock import database_now
from batchjobs.models.set_aside import DATABASE_OUTAGES

from .hot_sql import column_of, insert_constants

logger = logging.getLogger(__name__)

# The upstream's result handed on in the downstream's params: larger ones are left out (the
# params are stored on every run and sent to the job; the result stays on the upstream's row).
UPSTREAM_RESULT_MAX_BYTES = 16_384

# The parameters a dependency adds to a downstream run: one upstream, or a fan-in's.
UPSTREAM_PARAMS = ("upstream", "upstreams")

# The upstream statuses that meet each condition.
CONDITION_MET_BY: dict[str, tuple[ExecutionStatus, ...]] = {
    DependencyCondition.SUCCESS: (ExecutionStatus.COMPLETED,),
    DependencyCondition.FAILURE: (ExecutionStatus.FAILED,),
    DependencyCondition.ALWAYS: (
        ExecutionStatus.COMPLETED,
        ExecutionStatus.FAILED,
        ExecutionStatus.STOPPED,
        ExecutionStatus.ABANDONED,
    ),
}
# The ends that start anything (SKIPPED is not among them: see above).
ENDS_THAT_START = CONDITION_MET_BY[DependencyCondition.ALWAYS]

# The columns a downstream row is written with; every other column gets its default.
_ROW_FIELDS = (
    "job", "trigger", "params", "status", "exclusive", "max_attempts", "next_attempt_at",
    "published_at", "finished_at", "error", "created_at", "logical_time",
    "data_interval_start", "data_interval_end", "triggered_by", "dependency", "start_key",
)  # fmt: skip
_ROW_CONSTANTS = insert_constants(BatchLog._meta.concrete_fields, filled=_ROW_FIELDS)
_UPSTREAM_FIELDS = (
    "pk", "job_id", "job__name", "status", "result", "logical_time", "scheduled_for",
    "created_at", "data_interval_start", "data_interval_end",
)  # fmt: skip


def conditions_met(status: str) -> list[str]:
    """The edge conditions an execution ending in `status` meets."""
    return [condition for condition, met in CONDITION_MET_BY.items() if status in met]


def dependency_start_key(*, edge_id: int, upstream_id: int) -> str:
    return f"dep:{edge_id}:{upstream_id}"


def fan_in_start_key(*, downstream_id: int, logical_time: datetime) -> str:
    return f"fanin:{downstream_id}:{logical_time.astimezone(UTC).isoformat()}"


def dependents_start(*, execution_id: int) -> list[int]:
    """Start the downstream runs the end of execution `execution_id` calls for; call it in the
    transaction that made the execution final. Returns the ids of the runs created (none when
    they existed already). They are published once the transaction commits.

    Never fails the upstream's end: a start the database refuses (the downstream job deleted
    meanwhile) is rolled back to a savepoint and logged; a database outage still raises, for
    the whole transaction to be tried again."""
    try:
        with transaction.atomic():
            created = _start(execution_id)
    except DATABASE_OUTAGES:
        raise
    except Exception:
        logger.exception("execution %s: its downstream runs could not be started", execution_id)
        return []
    queued = [pk for pk, status in created if status == ExecutionStatus.QUEUED]
    if queued:
        from .publish import executions_publish_or_defer

        transaction.on_commit(lambda: executions_publish_or_defer(queued), robust=True)
    return [pk for pk, _ in created]


def _start(execution_id: int) -> list[tuple[int, str]]:
    upstream = BatchLog.objects.filter(pk=execution_id).values(*_UPSTREAM_FIELDS).first()
    if upstream is None or upstream["status"] not in ENDS_THAT_START:
        return []
    edges = list(
        JobDependency.objects.filter(
            upstream_id=upstream["job_id"], condition__in=conditions_met(upstream["status"])
        )
        .select_related("downstream")
        .order_by("downstream_id")  # fan-in locks in one order: no deadlock between two ends
    )
    now = database_now()
    created: list[tuple[int, str]] = []
    for edge in edges:
        downstream = edge.downstream
        if downstream.upstream_mode == UpstreamMode.ALL:
            row = _fan_in_start(edge, upstream, now=now)
        else:
            params = {**downstream.params, "upstream": upstream_summary(upstream)}
            key = dependency_start_key(edge_id=edge.pk, upstream_id=upstream["pk"])
            row = _insert_once(_row(edge, upstream, params=params, start_key=key, now=now))
        if row is not None:
            created.append(row)
    return created


def _fan_in_start(
    edge: JobDependency, upstream: dict[str, Any], *, now: datetime
) -> tuple[int, str] | None:
    """The downstream run of a fan-in job, if every one of its upstream jobs now has an
    execution of this logical time that met its edge's condition."""
    downstream = edge.downstream
    logical_time = _logical_time(upstream)
    # Serialise the fan-in's judges: an upstream end that committed while this one waited is
    # seen once the lock is ours (each statement reads what committed before it).
    BatchJob.objects.select_for_update().filter(pk=downstream.pk).values_list("pk").first()
    summaries = []
    for incoming in JobDependency.objects.filter(downstream_id=downstream.pk).order_by(
        "upstream__name"
    ):
        if incoming.upstream_id == upstream["job_id"]:
            met = upstream
        else:
            met = (
                BatchLog.objects.filter(
                    job_id=incoming.upstream_id,
                    status__in=CONDITION_MET_BY[incoming.condition],
                )
                .annotate(logical=Coalesce("logical_time", "scheduled_for", "created_at"))
                .filter(logical=logical_time)
                .order_by("-pk")
                .values(*_UPSTREAM_FIELDS)
                .first()
            )
        if met is None:
            return None  # still waiting for this upstream job
        summaries.append(upstream_summary(met))
    params = {**downstream.params, "upstreams": summaries}
    key = fan_in_start_key(downstream_id=downstream.pk, logical_time=logical_time)
    return _insert_once(_row(edge, upstream, params=params, start_key=key, now=now))


def _logical_time(upstream: dict[str, Any]) -> datetime:
    """The instant the upstream run stands for; rows made before logical times were recorded
    fall back to their fire time, else their creation."""
    return upstream["logical_time"] or upstream["scheduled_for"] or upstream["created_at"]


def upstream_summary(upstream: dict[str, Any]) -> dict[str, Any]:
    """What a downstream run is told of an upstream execution, bounded in size."""
    logical_time = _logical_time(upstream)
    summary: dict[str, Any] = {
        "execution_id": upstream["pk"],
        "job": upstream["job__name"],
        "status": upstream["status"],
        "logical_time": logical_time.astimezone(UTC).isoformat(),
        "result": upstream["result"],
    }
    size = len(json.dumps(upstream["result"], cls=DjangoJSONEncoder).encode())
    if size > UPSTREAM_RESULT_MAX_BYTES:
        summary["result"] = None
        summary["result_truncated"] = True
    return summary


def _row(
    edge: JobDependency,
    upstream: dict[str, Any],
    *,
    params: dict[str, Any],
    start_key: str,
    now: datetime,
) -> dict[str, Any]:
    downstream = edge.downstream
    enabled = downstream.enabled
    return {
        "job": downstream.pk,
        "trigger": Trigger.DEPENDENCY.value,
        "params": params,
        "status": (ExecutionStatus.QUEUED if enabled else ExecutionStatus.SKIPPED).value,
        "exclusive": downstream.overlap_policy != OverlapPolicy.ALLOW,
        "max_attempts": downstream.max_attempts,
        "next_attempt_at": now if enabled else None,
        "published_at": now if enabled else None,
        "finished_at": None if enabled else now,
        # Written by a worker, in the deployment's language (LANGUAGE_CODE).
        "error": ""
        if enabled
        else gettext("skipped: job %(name)s is disabled") % {"name": downstream.name},
        "created_at": now,
        "logical_time": _logical_time(upstream),
        "data_interval_start": upstream["data_interval_start"],
        "data_interval_end": upstream["data_interval_end"],
        "triggered_by": upstream["pk"],
        "dependency": edge.pk,
        "start_key": start_key,
    }


def _field(name: str) -> Field:
    field = BatchLog._meta.get_field(name)
    assert isinstance(field, Field), name  # the row's fields are columns
    return field


def _insert_once(values: dict[str, Any]) -> tuple[int, str] | None:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id, status: the row (id, status), or None
    when its start key is taken (started already)."""
    meta = BatchLog._meta
    fields = [_field(name) for name in _ROW_FIELDS]
    columns = [column_of(field) for field in fields] + list(_ROW_CONSTANTS)
    placeholders = ["%s"] * len(fields) + list(_ROW_CONSTANTS.values())
    returning = f"{column_of(meta.pk)}, {column_of(meta.get_field('status'))}"
    sql = (
        f"INSERT INTO {meta.db_table} ({', '.join(columns)}) VALUES ({', '.join(placeholders)}) "
        f"ON CONFLICT DO NOTHING RETURNING {returning}"
    )
    params = [field.get_db_prep_save(values[field.name], connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else (row[0], row[1])


def job_params_taken(job: BatchJob, params: dict[str, Any]) -> dict[str, Any]:
    """The run's `params` as `job` is called with them: for a handler or batch job, without
    the upstream summaries its parameter schema does not declare."""
    if not any(name in params for name in UPSTREAM_PARAMS):
        return params
    if job.kind == JobKind.HANDLER:
        registered: Any = handler_get(job.handler_name)
    elif job.kind == JobKind.BATCH:
        registered = batch_job_get(job.batch_job_name)
    else:
        return params  # an HTTP job's templates may use them
    declared = registered.parameters.schema.get("properties", {}) if registered else {}
    return {
        name: value
        for name, value in params.items()
        if name not in UPSTREAM_PARAMS or name in declared
    }
