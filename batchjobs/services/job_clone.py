"""Clone a job: a new job with the same definition, schedules, headers, notifications, tags and
upstream dependencies, saved through the services that check and audit each, in one
transaction. The copy is saved disabled with its schedules paused, so it does not run beside
the original (on a schedule, or when an upstream job ends) before an operator says so."""

import copy
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from batchjobs.errors import InvalidInput
from batchjobs.models import BatchJob, JobNotification, ScheduleKind
from batchjobs.models.clock import database_now

from .dependencies import job_upstream_set
from .jobs import JOB_FIELDS, job_create
from .notifications import notification_save
from .schedules import ONCE_PAST_TOLERANCE, SCHEDULE_FIELDS, schedule_create

# Not copied: who made it and when are the clone's own; the name is the new one; the rest is
# set below (enabled) or derived on save (target_host).
JOB_FIELDS_NOT_COPIED = {"name", "tags", "created_by", "enabled", "target_host"}
SCHEDULE_FIELDS_NOT_COPIED = {"job", "calendars", "paused", "set_aside_at", "set_aside_reason"}
NOTIFICATION_FIELDS_NOT_COPIED = {"id", "job", "created_at", "updated_at"}
# How many numbered names ("copy of X 2", ...) the default name tries before giving up.
CLONE_NAME_TRIES = 100
NAME_MAX_LENGTH = BatchJob._meta.get_field("name").max_length or 200


@dataclass(frozen=True)
class JobCloned:
    job: BatchJob
    schedules_copied: int
    # Once-schedules whose time has passed: they would never fire again, and a once-schedule
    # in the past is refused.
    schedules_left_out: int


def job_clone_name(*, job: BatchJob) -> str:
    """The name a clone of `job` gets unless one is given: "copy of <name>", numbered if taken."""
    base = (_("copy of %(name)s") % {"name": job.name})[:NAME_MAX_LENGTH]
    candidates = [base] + [
        f"{base[: NAME_MAX_LENGTH - len(suffix)]}{suffix}"
        for suffix in (f" {number}" for number in range(2, CLONE_NAME_TRIES + 1))
    ]
    taken = set(BatchJob.objects.filter(name__in=candidates).values_list("name", flat=True))
    return next((name for name in candidates if name not in taken), base)


def job_clone(*, job: BatchJob, name: str | None = None, user=None) -> JobCloned:
    """Copy `job` under `name` (default: job_clone_name), disabled, its schedules paused.
    Secret header values are copied encrypted, as stored. Raises InvalidInput naming the field
    (a taken or invalid `name` on "name"); then nothing was saved."""
    if name is None:
        name = job_clone_name(job=job)
    if not isinstance(name, str):
        raise InvalidInput({"name": _("Enter the new job's name.")})
    now = database_now()
    fields: dict[str, Any] = {
        field.name: copy.deepcopy(getattr(job, field.attname))
        for field in BatchJob._meta.concrete_fields
        if field.name in JOB_FIELDS - JOB_FIELDS_NOT_COPIED
    }
    schedules = list(job.schedules.order_by("pk").prefetch_related("calendars"))
    copied = left_out = 0
    with transaction.atomic():
        clone = job_create(
            user=user,
            name=name.strip(),
            enabled=False,
            tags=list(job.tags.values_list("name", flat=True)),
            **fields,
        )
        for schedule in schedules:
            if (
                schedule.kind == ScheduleKind.ONCE
                and schedule.run_at is not None
                and schedule.run_at < now + ONCE_PAST_TOLERANCE
            ):
                left_out += 1
                continue
            schedule_create(
                job=clone,
                user=user,
                paused=True,
                calendars=list(schedule.calendars.all()),
                **{
                    field: copy.deepcopy(getattr(schedule, field))
                    for field in SCHEDULE_FIELDS - SCHEDULE_FIELDS_NOT_COPIED
                },
            )
            copied += 1
        for notification in JobNotification.objects.filter(job=job).order_by("pk"):
            notification_save(
                notification=JobNotification(
                    job=clone,
                    **{
                        field.name: getattr(notification, field.attname)
                        for field in JobNotification._meta.concrete_fields
                        if field.name not in NOTIFICATION_FIELDS_NOT_COPIED
                    },
                ),
                user=user,
            )
        upstream = [
            {"job": edge.upstream_id, "condition": edge.condition}
            for edge in job.upstream_edges.order_by("pk")
        ]
        if upstream:
            job_upstream_set(job=clone, upstream=upstream, user=user)
    return JobCloned(job=clone, schedules_copied=copied, schedules_left_out=left_out)
