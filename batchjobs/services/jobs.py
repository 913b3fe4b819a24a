"""Writes to jobs. Validation lives in job_validate, which job_save and the admin's forms run
(services/validation.py), so the same rules guard every way in."""

import json
import math
import re
import time
from dataclasses import replace
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from batchjobs.batch.registry import batch_job_get, batch_job_names, batch_params_errors
from batchjobs.errors import Conflict, InvalidInput
from batchjobs.execution.http_job import RequestTemplates, http_request_send, http_variables
from batchjobs.execution.limits import limit_changed
from batchjobs.handlers.registry import handler_get, handler_names, handler_params_errors
from batchjobs.http.guard import url_errors
from batchjobs.models import AuditAction, BatchJob, JobKind, JobTag, limit_key
from batchjobs.models.clock import database_now
from batchjobs.models.execution import ACTIVE_STATUSES
from batchjobs.models.job import AssertionKind, default_queue
from batchjobs.rules.json_path import json_path_parse
from batchjobs.rules.status_spec import status_spec_parse
from batchjobs.rules.template import (
    TemplateError,
    template_parse,
    url_template_parse,
    url_template_skeleton,
)
from batchjobs.secrets import secret_encrypt, secret_rotate

from .audit import audit_changes, audit_record, audit_snapshot, audit_stored
from .executions import execution_fire_time
from .permissions import job_handler_permission_check
from .validation import instance_validate

HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
RESERVED_HEADERS = {"idempotency-key", "x-batchjobs-attempt", "host", "content-length"}


def job_validate(*, job: BatchJob, params_complete: bool = False) -> None:
    """Raise Django's ValidationError mapping each bad field to its messages.

    A batch job's `params` are defaults to which a start adds the rest (a job created by a
    start by name, operator._job, has none), so its required parameters may be missing;
    `params_complete`: not so, they must all be given (the admin's form, whose defaults are
    what the job's schedules fire with)."""
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    # Each number's bounds are its model field's validators (batchjobs/rules/bounds.py), checked
    # by full_clean before this; what is left here is what one field cannot say alone.
    for field in ("timeout_seconds", "retry_backoff_seconds", "retry_backoff_max_seconds"):
        value = getattr(job, field)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            add(field, _("Enter a finite number of seconds."))
    if (
        "retry_backoff_seconds" not in errors
        and "retry_backoff_max_seconds" not in errors
        and job.retry_backoff_max_seconds < job.retry_backoff_seconds
    ):
        add("retry_backoff_max_seconds", _("Must not be below retry_backoff_seconds."))
    # No queue named: the kind's (HTTP jobs to the I/O lane), as BatchJob.save would choose.
    job.queue = (job.queue or "").strip() or default_queue(job.kind)

    if job.kind == JobKind.HTTP:
        _validate_http(job, add)
    elif job.kind == JobKind.HANDLER:
        _validate_handler(job, add)
    elif job.kind == JobKind.BATCH:
        _validate_batch(job, add, params_complete=params_complete)
    elif job.kind:
        add(
            "kind",
            _("Unknown kind %(kind)s; choose one of %(kinds)s.")
            % {"kind": repr(job.kind), "kinds": ", ".join(JobKind.values)},
        )
    if errors:
        raise DjangoValidationError(errors)


def _validate_http(job: BatchJob, add) -> None:
    if not job.http_url:
        add("http_url", _("An HTTP job needs a URL."))
    else:
        # A template may fill in the path and the query, never the host: the URL's check
        # reads it with each expression replaced, and holds for every run.
        try:
            url = url_template_skeleton(url_template_parse(job.http_url))
        except TemplateError as exc:
            add("http_url", str(exc))
        else:
            for message in url_errors(url):
                add("http_url", message)
    if not isinstance(job.http_headers, list):
        add("http_headers", _('Must be a list of {"name", "value", "secret"} objects.'))
    else:
        for index, header in enumerate(job.http_headers):
            messages = _header_errors(header)
            for message in messages:
                add(
                    "http_headers",
                    _("header %(number)s: %(message)s") % {"number": index + 1, "message": message},
                )
            if messages:
                continue
            # A secret kept from the stored job is encrypted here; it was checked when typed.
            try:
                template_parse(header["value"])
            except TemplateError as exc:
                add("http_headers", f"http_headers[{index}].value: {exc}")
    if isinstance(job.http_body, str):
        try:
            template_parse(job.http_body)
        except TemplateError as exc:
            add("http_body", str(exc))
    try:
        status_spec_parse(job.http_expected_status or "")
    except ValueError as exc:
        add("http_expected_status", str(exc))
    if job.http_assertion_kind == AssertionKind.REGEX:
        try:
            re.compile(job.http_assertion)
        except re.error as exc:
            add("http_assertion", _("Not a valid regular expression: %(error)s.") % {"error": exc})
    elif job.http_assertion_kind == AssertionKind.JSON_PATH:
        try:
            json_path_parse(job.http_assertion)
        except ValueError as exc:
            add("http_assertion", str(exc))
        try:
            json.loads(job.http_assertion_value)
        except ValueError:
            add(
                "http_assertion_value",
                _('Enter the expected value as JSON, e.g. "ok", 3 or true.'),
            )
    if job.http_assertion_kind and not job.http_assertion:
        add("http_assertion", _("Enter the expression to check."))


def _header_errors(header: Any) -> list[str]:
    if not isinstance(header, dict):
        return [_('must be an object {"name": ..., "value": ..., "secret": ...}')]
    unknown = set(header) - {"name", "value", "secret"}
    if unknown:
        return [_("unknown keys %(keys)s") % {"keys": sorted(unknown)}]
    name, value = header.get("name"), header.get("value")
    messages = []
    if not isinstance(name, str) or not HEADER_NAME.match(name):
        messages.append(_("%(name)s is not a valid header name") % {"name": repr(name)})
    elif name.lower() in RESERVED_HEADERS:
        messages.append(_("%(name)s is set by batchjobs itself") % {"name": name})
    if not isinstance(value, str) or "\n" in value or "\r" in value:
        messages.append(_("value must be a string on one line"))
    if not isinstance(header.get("secret", False), bool):
        messages.append(_("secret must be true or false"))
    return messages


def _validate_handler(job: BatchJob, add) -> None:
    if not job.handler_name:
        add("handler_name", _("A handler job needs a handler name."))
        return
    if handler_get(job.handler_name) is None:
        add(
            "handler_name",
            _("No handler named %(name)s; registered: %(names)s.")
            % {"name": repr(job.handler_name), "names": ", ".join(handler_names())},
        )
        return
    if not isinstance(job.params, dict):
        add("params", _("Must be a JSON object."))
        return
    for message in handler_params_errors(job.handler_name, job.params):
        add("params", message)


def _validate_batch(job: BatchJob, add, *, params_complete: bool) -> None:
    if not job.batch_job_name:
        add("batch_job_name", _("A batch job needs the name of a registered batch job."))
        return
    if batch_job_get(job.batch_job_name) is None:
        add(
            "batch_job_name",
            _("No batch job named %(name)s; registered: %(names)s.")
            % {
                "name": repr(job.batch_job_name),
                "names": ", ".join(batch_job_names()) or _("none"),
            },
        )
        return
    if not isinstance(job.params, dict):
        add("params", _("Must be a JSON object."))
        return
    partial = not params_complete
    for message in batch_params_errors(job.batch_job_name, job.params, partial=partial):
        add("params", message)


JOB_FIELDS = {
    field.name
    for field in BatchJob._meta.get_fields()
    if field.concrete and not field.auto_created and field.name not in {"created_at", "updated_at"}
}


def _assign(job: BatchJob, fields: dict[str, Any]) -> None:
    unknown = set(fields) - JOB_FIELDS
    if unknown:
        raise InvalidInput({name: _("Unknown field.") for name in sorted(unknown)})
    for name, value in fields.items():
        setattr(job, name, value)


def job_save(*, job: BatchJob, user=None) -> BatchJob:
    """Validate and save a job created or changed in memory (as an admin form does), and
    audit what changed."""
    job_handler_permission_check(kind=job.kind, handler_name=job.handler_name, user=user)
    before = audit_stored(job)
    if before is None and job.created_by_id is None and getattr(user, "is_authenticated", False):
        job.created_by = user
    instance_validate(job, validate=lambda: job_validate(job=job))
    job.http_headers = _headers_encrypted(job.http_headers)
    changes = audit_changes(before, audit_snapshot(job))
    try:
        with transaction.atomic():
            job.save()
            if changes:
                action = AuditAction.CREATED if before is None else AuditAction.CHANGED
                audit_record(action=action, obj=job, user=user, changes=changes)
            if before is not None and "max_running" in changes:
                # Its runs held by the old limit count anew against the new one.
                key = limit_key("job", str(job.pk))
                transaction.on_commit(lambda: limit_changed(key))
    except IntegrityError as exc:  # lost a race with another save of the same name
        raise InvalidInput({"name": _("A job with this name already exists.")}) from exc
    return job


def _headers_encrypted(headers: list[dict]) -> list[dict]:
    """Secret header values are stored encrypted (batchjobs/secrets.py); a value already
    encrypted (kept from the stored job, as the admin's mask does) stays as it is."""
    return [
        {**header, "value": secret_encrypt(header["value"])} if header.get("secret") else header
        for header in headers
    ]


def jobs_secrets_rotate() -> int:
    """Re-encrypt every stored secret under the newest key; returns how many jobs changed."""
    rotated = 0
    for job in BatchJob.objects.exclude(http_headers=[]).iterator():
        headers = [
            {**header, "value": secret_rotate(header["value"])} if header.get("secret") else header
            for header in job.http_headers
        ]
        if headers != job.http_headers:
            BatchJob.objects.filter(pk=job.pk).update(http_headers=headers)
            rotated += 1
    return rotated


def job_create(*, user=None, tags: Any = None, **fields: Any) -> BatchJob:
    """Create a job; `tags`: the names of its tags (created on demand)."""
    job = BatchJob()
    _assign(job, fields)
    with transaction.atomic():  # the job and its tags, or neither
        _job_save_with_tags(job, tags, user=user)
    return job


def job_update(*, job: BatchJob, user=None, tags: Any = None, **fields: Any) -> BatchJob:
    """Change a job; `tags`, when given, replaces the names of its tags."""
    _assign(job, fields)
    with transaction.atomic():
        _job_save_with_tags(job, tags, user=user)
    return job


def _job_save_with_tags(job: BatchJob, tags: Any, *, user) -> None:
    """job_save, then the tags set if given; bad tags are reported with the job's own errors."""
    tag_errors: dict[str, list[str]] = {}
    if tags is not None:
        try:
            tag_names_clean(tags)
        except InvalidInput as exc:
            tag_errors = exc.field_errors
    try:
        job_save(job=job, user=user)
    except InvalidInput as exc:
        raise InvalidInput({**exc.field_errors, **tag_errors}) from exc
    if tag_errors:
        raise InvalidInput(tag_errors)
    if tags is not None:
        job_tags_set(job=job, names=tags, user=user)


# A tag is a label, not a hierarchy: a few per job are plenty, and a list page shows them all.
MAX_TAGS_PER_JOB = 20


def tag_names_clean(names: Any, *, field: str = "tags") -> list[str]:
    """The tag names, stripped, checked (JobTag.name's rules) and deduplicated in their order;
    raises InvalidInput on `field` naming each bad one."""
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise InvalidInput({field: _("Must be a list of tag names.")})
    cleaned = list(dict.fromkeys(name.strip() for name in names))
    name_field = JobTag._meta.get_field("name")
    errors: list[str] = []
    for name in cleaned:
        try:
            name_field.clean(name, None)
        except DjangoValidationError as exc:
            errors.extend(f"{name!r}: {message}" for message in exc.messages)
    if len(cleaned) > MAX_TAGS_PER_JOB:
        errors.append(
            _("At most %(max)s tags per job (%(count)s given).")
            % {"max": MAX_TAGS_PER_JOB, "count": len(cleaned)}
        )
    if errors:
        raise InvalidInput({field: errors})
    return cleaned


def _tags_of(names: list[str]) -> list[JobTag]:
    """The tags of these names, those missing created (a race with another creation is won by
    whichever inserts first: both then use the one row)."""
    existing = {tag.name: tag for tag in JobTag.objects.filter(name__in=names)}
    missing = [JobTag(name=name) for name in names if name not in existing]
    if missing:
        JobTag.objects.bulk_create(missing, ignore_conflicts=True)
        existing = {tag.name: tag for tag in JobTag.objects.filter(name__in=names)}
    return [existing[name] for name in names]


def _tag_names_locked(job: BatchJob) -> list[str]:
    """The job's tag names, its row locked to the end of the transaction: concurrent edits of
    one job's tags apply one after the other, each audited against what the other left."""
    list(BatchJob.objects.select_for_update().filter(pk=job.pk).values_list("pk", flat=True))
    return list(job.tags.values_list("name", flat=True))


def job_tags_set(*, job: BatchJob, names: Any, user=None, field: str = "tags") -> list[str]:
    """Make `names` the job's whole set of tags (tags missing are created), audited as a change
    of the job's `tags`; returns the job's tag names, sorted."""
    wanted = tag_names_clean(names, field=field)
    with transaction.atomic():
        before = sorted(_tag_names_locked(job))
        tags = _tags_of(wanted)
        after = sorted(tag.name for tag in tags)
        if after != before:
            job.tags.set(tags)
            audit_record(action=AuditAction.CHANGED, obj=job, user=user,
                         changes={"tags": [before, after]})  # fmt: skip
    return after


def job_tags_add(*, job: BatchJob, names: Any, user=None) -> list[str]:
    """Add these tags (created on demand) to the job's, audited; returns its tag names."""
    added = tag_names_clean(names)
    with transaction.atomic():
        return job_tags_set(job=job, names=[*_tag_names_locked(job), *added], user=user)


def job_tags_remove(*, job: BatchJob, names: Any, user=None) -> list[str]:
    """Remove these tags from the job's (a name it does not carry is ignored), audited."""
    removed = set(tag_names_clean(names))
    with transaction.atomic():
        kept = [name for name in _tag_names_locked(job) if name not in removed]
        return job_tags_set(job=job, names=kept, user=user)


def job_set_enabled(*, job: BatchJob, enabled: bool, user=None) -> BatchJob:
    with transaction.atomic():
        if BatchJob.objects.filter(pk=job.pk).exclude(enabled=enabled).update(enabled=enabled):
            action = AuditAction.ENABLED if enabled else AuditAction.DISABLED
            audit_record(action=action, obj=job, user=user,
                         changes={"enabled": [not enabled, enabled]})  # fmt: skip
    job.enabled = enabled
    return job


def job_delete(*, job: BatchJob, user=None) -> None:
    """Delete the job with its schedules and executions; the audit trail keeps its name.
    Refused while an execution is queued or running: stop it first."""
    with transaction.atomic():
        active = list(
            job.executions.filter(status__in=ACTIVE_STATUSES).values_list("pk", flat=True)
        )
        if active:
            raise Conflict(
                _(
                    "job %(name)s has queued or running executions %(ids)s; "
                    "stop them before deleting the job"
                )
                % {"name": repr(job.name), "ids": active}
            )
        audit_record(action=AuditAction.DELETED, obj=job, user=user)
        job.delete()


# A test fire holds a web worker; a job's own timeout may be far longer.
TEST_FIRE_MAX_SECONDS = 30.0
# A test fire has no execution: it sends these in the execution id and attempt headers.
TEST_FIRE_EXECUTION_ID = 0
TEST_FIRE_ATTEMPT = 0


def job_test_fire(*, job: BatchJob) -> dict[str, Any]:
    """One real call of an HTTP job, judged as a run would judge it, recording nothing; the
    API's test-fire and the admin's button. The request is shown as sent, its templates
    filled in as for a run fired now with the job's default parameters; secret header values
    are shown masked."""
    if job.kind != JobKind.HTTP:
        raise Conflict(
            _("job %(name)s is a %(kind)s job; only HTTP jobs can be test-fired")
            % {"name": repr(job.name), "kind": job.kind}
        )
    now = database_now()
    fire_time = replace(execution_fire_time(job=job, logical_time=now), scheduled_for=now)
    variables = http_variables(job, execution_id=TEST_FIRE_EXECUTION_ID,
                               attempt=TEST_FIRE_ATTEMPT, params=job.params,
                               fire_time=fire_time)  # fmt: skip
    try:
        request = RequestTemplates.of(job).rendered(
            execution_id=TEST_FIRE_EXECUTION_ID, attempt=TEST_FIRE_ATTEMPT, variables=variables
        )
    except TemplateError as exc:
        raise Conflict(
            _("job %(name)s cannot be test-fired: %(error)s")
            % {"name": repr(job.name), "error": exc}
        ) from None
    started = time.monotonic()
    outcome = http_request_send(
        job, request, deadline=started + min(job.timeout_seconds, TEST_FIRE_MAX_SECONDS)
    )
    result = outcome.result or {}
    return {
        "outcome": outcome.status,
        "error": outcome.error,
        "retryable": outcome.retryable,
        "duration_seconds": round(time.monotonic() - started, 3),
        "request": request.shown(),
        "response": {
            "status": outcome.http_status,
            "url": result.get("url"),
            "bytes": result.get("bytes"),
            "excerpt": outcome.response_excerpt,
        },
    }
