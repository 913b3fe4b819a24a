"""Jobs as code: jobs with their schedules, and the run limits, as one document, exported and
imported through the definition serializers the API's extend, so a file is checked exactly as
an API call is, by the same services. Round trip: export, delete, import, export again gives
the same document.

    {"version": 1,
     "limits": [{"scope": "host", "name": ..., "max_running": ..., "max_per_second": ...}],
     "calendars": [{"name": ..., "country": "KR", ..., "excluded_dates": [...]}],
     "jobs": [{"name": ..., <job fields>, "schedules": [{<schedule fields>}],
               "upstream": [{"job": <upstream job's name>, "condition": "success"}]}]}

Import is an upsert by job name (and by scope and name for a limit), all or nothing: a job's
schedules are matched by position (the first in the file updates the job's oldest schedule, and
so on); extra ones are created, missing ones deleted. Jobs and limits absent from the document
are left alone. Secret header values are exported masked unless asked for; a masked value
imports only onto a job that already holds that secret. An export of named jobs holds the
limits of their queues and target hosts, and the calendars their schedules use (schedules name
their calendars; calendars are upserted by name before the jobs). Any list may be left out of a
document.

A job's `upstream` lists the jobs whose end starts it (job dependencies; its `upstream_mode`
says whether any one or all of them do): on import it becomes the job's whole set of upstream
edges, set once every job of the document exists, the jobs named by name; a job entry without
`upstream` keeps its edges. An edge that closes a cycle is refused naming the cycle.
"""

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal, TypedDict

import yaml
from django.db import transaction
from django.utils.translation import gettext as _
from rest_framework import serializers

from batchjobs.errors import InvalidInput, NotFound
from batchjobs.models import BatchJob, Calendar, JobDependency, LimitScope, RunLimit
from batchjobs.rules.text import unstorable_text_path
from batchjobs.selectors.jobs import jobs_with_schedules
from batchjobs.services.calendars import calendar_create, calendar_update
from batchjobs.services.definition_serializers import (
    CalendarDefinitionSerializer,
    JobDefinitionSerializer,
    LimitDefinitionSerializer,
    ScheduleDefinitionSerializer,
    field_errors,
)
from batchjobs.services.dependencies import job_upstream_set
from batchjobs.services.jobs import job_create, job_update
from batchjobs.services.limits import limit_create, limit_name_normalised, limit_update
from batchjobs.services.schedules import schedule_create, schedule_delete, schedule_update

DOCUMENT_VERSION = 1
DOCUMENT_FORMATS = ("yaml", "json")


def document_format(path: str | None, requested: str | None) -> str:
    """The format asked for if any, else the file's extension (.json, .yaml/.yml), else YAML."""
    if requested:
        return requested
    return "json" if path and path.lower().endswith(".json") else "yaml"


def document_dump(document: dict, fmt: str) -> str:
    """A document as the command line writes it: indented JSON, or YAML in the document's order."""
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


def document_load(text: str, fmt: str) -> Any:
    """The document in `text` (JSON or YAML); InvalidInput on `file` when it does not parse."""
    try:
        return json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidInput(
            {"file": _("Not valid %(format)s: %(error)s") % {"format": fmt.upper(), "error": exc}}
        ) from exc


def definitions_export(
    *, names: list[str] | None = None, include_secrets: bool = False, include_limits: bool = True
) -> dict[str, Any]:
    """The jobs (all, or those named) with their schedules, and the limits (all, or those of
    the named jobs' queues and hosts; none unless `include_limits`), as plain JSON-able data."""
    jobs = list(jobs_with_schedules(names=names))
    missing = sorted(set(names or ()) - {job.name for job in jobs})
    if missing:
        raise NotFound(_("no job named %(names)s") % {"names": ", ".join(map(repr, missing))})
    document = {
        "version": DOCUMENT_VERSION,
        "limits": [
            LimitDefinitionSerializer(limit).data
            for limit in (_limits_of(jobs if names else None) if include_limits else ())
        ],
        "calendars": [
            CalendarDefinitionSerializer(calendar).data
            for calendar in _calendars_of(jobs if names else None)
        ],
        "jobs": _job_entries(jobs, include_secrets=include_secrets),
    }
    return json.loads(json.dumps(document))  # plain dicts and lists, for any dumper


def _job_entries(jobs: list[BatchJob], *, include_secrets: bool) -> list[dict[str, Any]]:
    """Each job's entry of a document: its definition, schedules and upstream edges."""
    context = {"include_secrets": include_secrets}
    upstream: dict[int, list[dict[str, str]]] = {}
    edges = JobDependency.objects.filter(downstream__in=jobs).select_related("upstream")
    for edge in edges.order_by("upstream__name"):
        upstream.setdefault(edge.downstream_id, []).append(
            {"job": edge.upstream.name, "condition": edge.condition}
        )
    return [
        {
            **JobDefinitionSerializer(job, context=context).data,
            "schedules": [
                ScheduleDefinitionSerializer(schedule).data for schedule in job.schedules.all()
            ],
            "upstream": upstream.get(job.pk, []),
        }
        for job in jobs
    ]


def _calendars_of(jobs: list[BatchJob] | None) -> list[Calendar]:
    """Every calendar (`jobs` None), or those the jobs' schedules use."""
    calendars = Calendar.objects.order_by("name")
    if jobs is None:
        return list(calendars)
    return list(calendars.filter(schedules__job__in=jobs).distinct())


def _limits_of(jobs: list[BatchJob] | None) -> list[RunLimit]:
    """Every limit (`jobs` None), or those that apply to these jobs."""
    limits = RunLimit.objects.order_by("scope", "name")
    if jobs is None:
        return list(limits)
    queues = {job.queue for job in jobs}
    hosts = {job.target_host for job in jobs if job.target_host}
    return [
        limit
        for limit in limits.filter(name__in=queues | hosts)
        if limit.name in (queues if limit.scope == LimitScope.QUEUE else hosts)
    ]


class JobOutcome(TypedDict):
    """What an import did (or, in a dry run, would do) to one job of the document."""

    name: str
    outcome: Literal["created", "updated", "unchanged"]
    # The entry's fields that changed, as `field`, `schedules[<n>].<field>` or `upstream`.
    fields: list[str]


@dataclasses.dataclass
class ImportResult:
    jobs_created: int = 0
    jobs_updated: int = 0
    schedules_created: int = 0
    schedules_updated: int = 0
    schedules_deleted: int = 0
    limits_created: int = 0
    limits_updated: int = 0
    calendars_created: int = 0
    calendars_updated: int = 0
    dry_run: bool = False
    jobs: list[JobOutcome] = dataclasses.field(default_factory=list)


def definitions_import(*, document: Any, user=None, dry_run: bool = False) -> ImportResult:
    """Create or update the document's limits, jobs and schedules, all in one transaction.
    Raises InvalidInput naming each bad field as `limits[<n>].<field>`, `<job name>.<field>` or
    `<job name>.schedules[<n>].<field>`; then nothing was changed."""
    entries = _entries(document)
    limits = _limit_entries(document)
    calendars = _calendar_entries(document)
    result = ImportResult(dry_run=dry_run)
    names = [entry["name"] for entry in entries if isinstance(entry.get("name"), str)]
    # Every bad entry is reported, not only the first: each is tried in a savepoint of its own.
    errors: dict[str, list[str]] = {}
    with transaction.atomic():
        before = _entries_by_name(names)
        for index, entry in enumerate(calendars):
            with _errors_collected(errors):
                _import_calendar(entry, label=f"calendars[{index}]", user=user, result=result)
        for index, entry in enumerate(limits):
            with _errors_collected(errors):
                _import_limit(entry, label=f"limits[{index}]", user=user, result=result)
        for index, entry in enumerate(entries):
            with _errors_collected(errors):
                _import_job(entry, label=_label(entry, index), user=user, result=result)
        if errors:
            raise InvalidInput(errors)
        # Once every job of the document exists: an edge may name a job defined after it.
        for index, entry in enumerate(entries):
            if "upstream" in entry:
                label = _label(entry, index)
                job = BatchJob.objects.get(name=entry["name"])
                job_upstream_set(job=job, upstream=entry["upstream"], user=user,
                                 field=f"{label}.upstream")  # fmt: skip
        after = _entries_by_name(names)
        result.jobs = [_outcome(name, before.get(name), after[name]) for name in names]
        if dry_run:
            transaction.set_rollback(True)
    return result


@contextmanager
def _errors_collected(errors: dict[str, list[str]]) -> Iterator[None]:
    """Run the block in a savepoint; its InvalidInput is added to `errors` instead of raised."""
    try:
        with transaction.atomic():
            yield
    except InvalidInput as exc:
        for name, messages in exc.field_errors.items():
            errors.setdefault(name, []).extend(messages)


def _entries_by_name(names: list[str]) -> dict[str, dict[str, Any]]:
    """The stored jobs of these names as document entries, to compare. Headers are taken as
    stored: a secret value changed differs, and nothing needs decrypting."""
    jobs = list(jobs_with_schedules(names=names))
    entries = _job_entries(jobs, include_secrets=False)
    for job, entry in zip(jobs, entries, strict=True):
        entry["http_headers"] = job.http_headers
    return {entry["name"]: entry for entry in entries}


def _outcome(name: str, before: dict[str, Any] | None, after: dict[str, Any]) -> JobOutcome:
    if before is None:
        return {"name": name, "outcome": "created", "fields": []}
    fields = _differences(before, after, "")
    return {"name": name, "outcome": "updated" if fields else "unchanged", "fields": fields}


def _differences(before: Any, after: Any, path: str) -> list[str]:
    """The paths at which two entries differ: fields by name, lists of objects (schedules,
    headers, upstream edges) by position."""
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        keys = dict.fromkeys([*after, *before])
        return [
            difference
            for key in keys
            for difference in _differences(
                before.get(key), after.get(key), f"{path}.{key}" if path else key
            )
        ]
    if (
        isinstance(before, list)
        and isinstance(after, list)
        and all(isinstance(item, dict) for item in [*before, *after])
    ):
        return [
            difference
            for index in range(max(len(before), len(after)))
            for difference in _differences(
                before[index] if index < len(before) else None,
                after[index] if index < len(after) else None,
                f"{path}[{index}]",
            )
        ]
    return [path]


def _entries(document: Any) -> list[dict]:
    if not isinstance(document, dict):
        raise InvalidInput({"document": _('Must be an object: {"version": 1, "jobs": [...]}.')})
    where = unstorable_text_path(document)
    if where is not None:
        raise InvalidInput(
            {where or "document": _("Text may not contain NUL characters or lone surrogates.")}
        )
    unknown = sorted(set(document) - {"version", "jobs", "limits", "calendars"})
    if unknown:
        raise InvalidInput({name: _("Unknown field.") for name in unknown})
    if document.get("version", DOCUMENT_VERSION) != DOCUMENT_VERSION:
        raise InvalidInput(
            {
                "version": _("Only version %(version)s is understood.")
                % {"version": DOCUMENT_VERSION}
            }
        )
    entries = document.get("jobs", [])
    if not isinstance(entries, list):
        raise InvalidInput({"jobs": _("Must be a list of jobs.")})
    names: set[str] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InvalidInput({f"jobs[{index}]": _("Must be an object.")})
        name = entry.get("name")
        if isinstance(name, str):
            if name in names:
                raise InvalidInput(
                    {f"jobs[{index}].name": _("Job %(name)s appears twice.") % {"name": repr(name)}}
                )
            names.add(name)
    return entries


def _limit_entries(document: dict) -> list[dict]:
    entries = document.get("limits", [])
    if not isinstance(entries, list):
        raise InvalidInput({"limits": _("Must be a list of limits.")})
    keys: set[tuple[str, str]] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InvalidInput({f"limits[{index}]": _("Must be an object.")})
        scope, name = entry.get("scope"), entry.get("name")
        if isinstance(scope, str) and isinstance(name, str):
            key = (scope, limit_name_normalised(scope=scope, name=name))
            if key in keys:
                raise InvalidInput(
                    {
                        f"limits[{index}].name": _("The %(scope)s limit %(name)s appears twice.")
                        % {"scope": scope, "name": repr(key[1])}
                    }
                )
            keys.add(key)
    return entries


def _calendar_entries(document: dict) -> list[dict]:
    entries = document.get("calendars", [])
    if not isinstance(entries, list):
        raise InvalidInput({"calendars": _("Must be a list of calendars.")})
    names: set[str] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InvalidInput({f"calendars[{index}]": _("Must be an object.")})
        name = entry.get("name")
        if isinstance(name, str):
            if name in names:
                raise InvalidInput(
                    {
                        f"calendars[{index}].name": _("Calendar %(name)s appears twice.")
                        % {"name": repr(name)}
                    }
                )
            names.add(name)
    return entries


def _import_calendar(entry: dict, *, label: str, user, result: ImportResult) -> None:
    name = entry.get("name")
    calendar = Calendar.objects.filter(name=name).first() if isinstance(name, str) else None
    data = _validated(CalendarDefinitionSerializer(instance=calendar, data=entry), label)
    try:
        if calendar is None:
            calendar_create(user=user, **data)
            result.calendars_created += 1
        else:
            calendar_update(calendar=calendar, user=user, **data)
            result.calendars_updated += 1
    except InvalidInput as exc:
        raise _prefixed(exc, label) from exc


def _label(entry: dict, index: int) -> str:
    name = entry.get("name")
    return name if isinstance(name, str) and name else f"jobs[{index}]"


def _validated(serializer: serializers.Serializer, label: str) -> dict:
    if not serializer.is_valid():
        raise InvalidInput(
            {
                f"{label}.{field}": messages
                for field, messages in field_errors(serializer.errors).items()
            }
        )
    return serializer.validated_data


def _prefixed(error: InvalidInput, label: str) -> InvalidInput:
    return InvalidInput({f"{label}.{field}": msgs for field, msgs in error.field_errors.items()})


def _import_job(entry: dict, *, label: str, user, result: ImportResult) -> None:
    fields = {key: value for key, value in entry.items() if key not in ("schedules", "upstream")}
    schedules = entry.get("schedules", [])
    if not isinstance(schedules, list):
        raise InvalidInput({f"{label}.schedules": _("Must be a list of schedules.")})
    name = fields.get("name")
    job = BatchJob.objects.filter(name=name).first() if isinstance(name, str) else None
    data = _validated(JobDefinitionSerializer(instance=job, data=fields), label)
    try:
        if job is None:
            job = job_create(user=user, **data)
            result.jobs_created += 1
        else:
            job = job_update(job=job, user=user, **data)
            result.jobs_updated += 1
    except InvalidInput as exc:
        raise _prefixed(exc, label) from exc

    existing = list(job.schedules.order_by("pk"))
    for position, schedule_fields in enumerate(schedules):
        where = f"{label}.schedules[{position}]"
        if not isinstance(schedule_fields, dict):
            raise InvalidInput({where: _("Must be an object.")})
        current = existing[position] if position < len(existing) else None
        data = _validated(
            ScheduleDefinitionSerializer(instance=current, data=schedule_fields), where
        )
        try:
            if current is None:
                schedule_create(job=job, user=user, **data)
                result.schedules_created += 1
            else:
                schedule_update(schedule=current, user=user, **data)
                result.schedules_updated += 1
        except InvalidInput as exc:
            raise _prefixed(exc, where) from exc
    for surplus in existing[len(schedules) :]:
        schedule_delete(schedule=surplus, user=user)
        result.schedules_deleted += 1


def _import_limit(entry: dict, *, label: str, user, result: ImportResult) -> None:
    scope, name = entry.get("scope"), entry.get("name")
    limit = None
    if isinstance(scope, str) and isinstance(name, str):
        normalised = limit_name_normalised(scope=scope, name=name)
        limit = RunLimit.objects.filter(scope=scope, name=normalised).first()
    data = _validated(LimitDefinitionSerializer(instance=limit, data=entry), label)
    try:
        if limit is None:
            limit_create(user=user, **data)
            result.limits_created += 1
        else:
            limit_update(limit=limit, user=user, **data)
            result.limits_updated += 1
    except InvalidInput as exc:
        raise _prefixed(exc, label) from exc
