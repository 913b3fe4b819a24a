"""Writes to the job graph: an edge "when <upstream> ends <condition>, start <downstream>" added or
removed, or a job's whole upstream set at once (the admin's inline, an import), audited like
every change. The rules, the same through every way in: both jobs exist (named by id or name,
the error naming the field), a job does not depend on itself, an edge is not added twice, and
no edge closes a cycle, which is refused naming it ("extract → transform → load → extract").

The graph's writes are serialised (an advisory lock on PostgreSQL; SQLite's one writer), and a
cycle is looked for after the edge is written, in the same transaction: two edges added at once
cannot each miss the other. An upstream job's updated_at is touched when its edges change: the
workers' job cache reads from it whether an end must look for downstream jobs."""

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models.functions import Now
from django.utils.translation import gettext as _

from batchjobs.errors import InvalidInput
from batchjobs.models import AuditAction, BatchJob, DependencyCondition, JobDependency
from batchjobs.selectors.dependencies import dependency_path, job_names

from .audit import audit_record
from .validation import instance_validate

# The advisory lock of the graph's writes (PostgreSQL), as migration 0011 names its locks.
GRAPH_LOCK = "batchjobs:job-graph"


def job_ref(value: Any, *, field: str) -> BatchJob:
    """The job named by `value`: its id (an integer) or its name. InvalidInput on `field`."""
    if isinstance(value, BatchJob):
        return value
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise InvalidInput({field: _("Name a job by its id or its name.")})
    lookup = {"pk": value} if isinstance(value, int) else {"name": value}
    job = BatchJob.objects.filter(**lookup).first()
    if job is None:
        raise InvalidInput({field: _("No job %(job)s.") % {"job": repr(value)}})
    return job


def _condition(value: Any, *, field: str) -> str:
    if value not in DependencyCondition.values:
        raise InvalidInput(
            {
                field: _("Unknown condition %(value)s; choose one of %(choices)s.")
                % {"value": repr(value), "choices": ", ".join(DependencyCondition.values)}
            }
        )
    return value


def _graph_lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [GRAPH_LOCK])


def _touch(job_ids: Iterable[int]) -> None:
    BatchJob.objects.filter(pk__in=list(job_ids)).update(updated_at=Now())


def _cycle_message(*, upstream_id: int, downstream_id: int) -> str | None:
    """The error an edge upstream -> downstream gets if it closes a cycle (it may be written
    already or not), naming the cycle; None if it does not."""
    path = dependency_path(start_id=downstream_id, goal_id=upstream_id)
    if path is None:
        return None
    names = " → ".join(job_names([upstream_id, *path]))
    return _("This dependency would make a cycle: %(cycle)s.") % {"cycle": names}


def _refuse_cycle(edge: JobDependency, *, field: str) -> None:
    """InvalidInput on `field` naming the cycle `edge` (written already) closes, if any."""
    message = _cycle_message(upstream_id=edge.upstream_id, downstream_id=edge.downstream_id)
    if message is not None:
        raise InvalidInput({field: message})


def dependency_validate(*, dependency: JobDependency) -> None:
    """Raise Django's ValidationError by field: a job on itself, an edge twice, an edge that
    closes a cycle (run by dependency_save and the admin's forms)."""
    upstream_id, downstream_id = dependency.upstream_id, dependency.downstream_id
    if upstream_id is None or downstream_id is None:
        return  # the field's own "required" says so
    if upstream_id == downstream_id:
        raise DjangoValidationError({"downstream": _("A job cannot depend on itself.")})
    twice = JobDependency.objects.filter(upstream_id=upstream_id, downstream_id=downstream_id)
    if twice.exclude(pk=dependency.pk).exists():
        raise DjangoValidationError({"downstream": _twice_message(dependency)})
    message = _cycle_message(upstream_id=upstream_id, downstream_id=downstream_id)
    if message is not None:
        raise DjangoValidationError({"upstream": message})


def _twice_message(dependency: JobDependency) -> str:
    return _("%(upstream)s already starts %(downstream)s; change or delete that dependency.") % {
        "upstream": dependency.upstream.name,
        "downstream": dependency.downstream.name,
    }


def dependency_save(*, dependency: JobDependency, user=None) -> JobDependency:
    """Validate and save an edge created or changed in memory (as the admin's forms do), and
    audit it. InvalidInput names the field at fault; nothing saved."""
    instance_validate(dependency, validate=lambda: dependency_validate(dependency=dependency))
    stored = JobDependency.objects.select_related("upstream", "downstream")
    before = stored.filter(pk=dependency.pk).first() if dependency.pk else None
    try:
        with transaction.atomic():
            _graph_lock()
            dependency.save()
            # Checked again under the lock: an edge another save added meanwhile counts.
            _refuse_cycle(dependency, field="upstream")
            _touch({dependency.upstream_id, *([before.upstream_id] if before else [])})
            changes = _edge_changes(before, dependency)
            if changes:
                action = AuditAction.CREATED if before is None else AuditAction.CHANGED
                audit_record(action=action, obj=dependency, user=user, changes=changes)
    except IntegrityError as exc:  # the same edge, saved meanwhile
        raise InvalidInput({"downstream": _twice_message(dependency)}) from exc
    return dependency


def dependency_create(
    *, upstream: Any, downstream: Any, condition: Any = DependencyCondition.SUCCESS, user=None
) -> JobDependency:
    """Add the edge: when `upstream` ends meeting `condition`, `downstream` starts. Jobs are
    given as instances, ids or names. InvalidInput names the field at fault; nothing saved."""
    edge = JobDependency(
        upstream=job_ref(upstream, field="upstream"),
        downstream=job_ref(downstream, field="downstream"),
        condition=_condition(condition, field="condition"),
    )
    return dependency_save(dependency=edge, user=user)


def dependency_delete(*, dependency: JobDependency, user=None) -> None:
    """Remove the edge; runs it started keep their record (their `dependency` is cleared)."""
    with transaction.atomic():
        _graph_lock()
        audit_record(action=AuditAction.DELETED, obj=dependency, user=user,
                     changes=_edge_changes(dependency, None))  # fmt: skip
        _touch([dependency.upstream_id])
        dependency.delete()


def job_upstream_set(
    *, job: BatchJob, upstream: list[dict[str, Any]], user=None, field: str = "upstream"
) -> list[JobDependency]:
    """Make `upstream` ([{"job": id or name, "condition": ...}]) the job's whole set of upstream
    edges: missing ones added, others' conditions changed, the rest removed; refused as a
    whole (InvalidInput on `field`[n].<key>) if any entry is bad or the set closes a cycle.
    Call inside a transaction to make it part of a larger change (an import)."""
    if not isinstance(upstream, list):
        raise InvalidInput({field: _('Must be a list of {"job": ..., "condition": ...} objects.')})
    wanted: dict[int, str] = {}
    for index, entry in enumerate(upstream):
        where = f"{field}[{index}]"
        if not isinstance(entry, dict) or set(entry) - {"job", "condition"}:
            raise InvalidInput({where: _('Must be an object {"job": ..., "condition": ...}.')})
        upstream_job = job_ref(entry.get("job"), field=f"{where}.job")
        if upstream_job.pk == job.pk:
            raise InvalidInput({f"{where}.job": _("A job cannot depend on itself.")})
        if upstream_job.pk in wanted:
            raise InvalidInput(
                {f"{where}.job": _("%(name)s appears twice.") % {"name": upstream_job.name}}
            )
        condition = entry.get("condition", DependencyCondition.SUCCESS)
        wanted[upstream_job.pk] = _condition(condition, field=f"{where}.condition")
    with transaction.atomic():
        _graph_lock()
        current = {edge.upstream_id: edge for edge in JobDependency.objects.filter(downstream=job)}
        for upstream_id, gone in current.items():
            if upstream_id not in wanted:
                audit_record(action=AuditAction.DELETED, obj=gone, user=user,
                             changes=_edge_changes(gone, None))  # fmt: skip
                gone.delete()
        edges = []
        for index, (upstream_id, condition) in enumerate(wanted.items()):
            kept = current.get(upstream_id)
            if kept is not None:
                edge = kept
            else:
                edge = JobDependency.objects.create(
                    upstream_id=upstream_id, downstream=job, condition=condition
                )
                audit_record(action=AuditAction.CREATED, obj=edge, user=user,
                             changes=_edge_changes(None, edge))  # fmt: skip
                _refuse_cycle(edge, field=f"{field}[{index}].job")
            if kept is not None and edge.condition != condition:
                changes = {"condition": [edge.condition, condition]}
                edge.condition = condition
                edge.save(update_fields=["condition"])
                audit_record(action=AuditAction.CHANGED, obj=edge, user=user, changes=changes)
            edges.append(edge)
        _touch({*current, *wanted})
    return edges


def _edge_changes(before: JobDependency | None, after: JobDependency | None) -> dict[str, list]:
    """An edge in the audit trail by its jobs' names (ids mean little once a job is gone)."""

    def shown(edge: JobDependency | None) -> dict[str, Any]:
        if edge is None:
            return {"upstream": None, "downstream": None, "condition": None}
        return {
            "upstream": edge.upstream.name,
            "downstream": edge.downstream.name,
            "condition": edge.condition,
        }

    old, new = shown(before), shown(after)
    return {name: [old[name], new[name]] for name in old if old[name] != new[name]}
