"""The audit trail: every service that changes a job, a schedule, a notification or an
execution's state records who did it here, in the transaction of the change."""

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models

from batchjobs.models import AuditAction, AuditEntry, BatchJob, JobDependency
from batchjobs.secrets import headers_masked

SYSTEM_ACTOR = "system"
# Bookkeeping that changes on its own: not what a person changed.
UNAUDITED_FIELDS = {"id", "created_at", "updated_at", "next_fire_at", "last_fire_at", "run_count"}


def _masked(field: str, value: Any) -> Any:
    return headers_masked(value) if field == "http_headers" else value


def audit_snapshot(obj: models.Model) -> dict[str, Any]:
    """The audited field values of `obj` (foreign keys as ids)."""
    return {
        field.name: getattr(obj, field.attname)
        for field in obj._meta.concrete_fields
        if field.name not in UNAUDITED_FIELDS
    }


def audit_stored(obj: models.Model) -> dict[str, Any] | None:
    """The snapshot of `obj` as the database holds it now: None if it is not saved yet."""
    if obj.pk is None:
        return None
    stored = type(obj)._default_manager.filter(pk=obj.pk).first()
    return None if stored is None else audit_snapshot(stored)  # None: deleted meanwhile


def audit_changes(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, list]:
    """{"field": [before, after]} for each field that differs (every field for a new object),
    secret header values masked."""
    if before is None:  # a new object: what it was given, leaving out the empty fields
        return {
            name: [None, _masked(name, value)]
            for name, value in after.items()
            if value not in (None, "", [], {})
        }
    return {
        name: [_masked(name, before.get(name)), _masked(name, value)]
        for name, value in after.items()
        if before.get(name) != value
    }


def _actor(user, fallback: str) -> tuple[Any, str]:
    if user is not None and getattr(user, "is_authenticated", False):
        return user, user.get_username()
    return None, fallback


def _job_of(obj: models.Model) -> BatchJob | None:
    if isinstance(obj, BatchJob):
        return obj
    if isinstance(obj, JobDependency):  # an edge belongs to the job it starts
        return obj.downstream
    return getattr(obj, "job", None)


def audit_record(
    *,
    action: AuditAction,
    obj: models.Model,
    user=None,
    actor: str = SYSTEM_ACTOR,
    changes: dict[str, list] | None = None,
) -> AuditEntry:
    """Record that `user` (or, with no authenticated user, `actor`: "system", "cli") did
    `action` to `obj`. Call it inside the transaction of the change, so both or neither stay."""
    who, name = _actor(user, actor)
    job = _job_of(obj)
    return AuditEntry.objects.create(
        actor=who,
        actor_name=name,
        action=action,
        content_type=ContentType.objects.get_for_model(obj, for_concrete_model=True),
        object_id=obj.pk,
        object_repr=str(obj)[:300],
        job=job if job is not None and job.pk is not None else None,
        job_name=job.name if job is not None else "",
        changes=changes or {},
    )


def audit_trail(*, obj: models.Model) -> models.QuerySet[AuditEntry]:
    """The entries about one object, newest first."""
    return AuditEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(obj, for_concrete_model=True),
        object_id=obj.pk,
    )
