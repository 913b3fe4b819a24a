"""Writes to run limits (per queue, per target host). limit_validate is run by limit_save and by
the admin's form (services/validation.py), so the same rules guard every way in. A change wakes
the executions the limit holds once it commits, so a raised limit takes effect at once."""

from functools import partial
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from batchjobs.errors import InvalidInput
from batchjobs.execution.limits import limit_changed
from batchjobs.models import AuditAction, LimitScope, RunLimit, limit_key
from batchjobs.rules.url import UrlRefused, http_url_parse

from .audit import audit_changes, audit_record, audit_snapshot, audit_stored
from .validation import instance_validate

LIMIT_FIELDS = ("scope", "name", "max_running", "max_per_second")


def limit_name_normalised(*, scope: str, name: str) -> str:
    """The name as executions are matched to it: without surrounding spaces, and a host as a
    job's URL names it (lower case, IDNA, IPv6 compressed), so that "Example.COM" or
    "bücher.de" is the host the jobs calling it name. A name that is no host stays as typed,
    for limit_validate to refuse."""
    name = name.strip()
    if scope != LimitScope.HOST:
        return name
    return _host_as_urls_name_it(name.lower()) or name.lower()


def _host_as_urls_name_it(text: str) -> str:
    """`text` read as the host of http://<text>/ (brackets optional around IPv6), by the parser
    that reads jobs' URLs; empty if it is not a host alone (a port, path or user makes it not)."""
    literal = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        parsed = http_url_parse(f"http://[{literal}]/" if ":" in literal else f"http://{literal}/")
    except UrlRefused:
        return ""
    return parsed.host if parsed.target == "/" else ""


def limit_validate(*, limit: RunLimit) -> None:
    """Raise Django's ValidationError mapping each bad field to its messages: the model's own
    rules, a host that no URL names, a second limit of the same scope and name."""
    errors: dict[str, list[str]] = {}
    try:
        RunLimit.clean(limit)  # the model's rules (limit.clean is this function meanwhile)
    except DjangoValidationError as exc:
        errors.update(exc.message_dict)
    if limit.scope == LimitScope.HOST and limit.name and "name" not in errors:
        if _host_as_urls_name_it(limit.name) != limit.name:
            errors["name"] = [
                _(
                    "Not a host: write it as a job's URL names it (example.com, 10.0.0.5, ::1), "
                    "without scheme, port or path."
                )
            ]
    if limit.scope in LimitScope.values and limit.name and "name" not in errors:
        taken = RunLimit.objects.filter(scope=limit.scope, name=limit.name).exclude(pk=limit.pk)
        if taken.exists():
            errors["name"] = [_taken_message(limit)]
    if errors:
        raise DjangoValidationError(errors)


def _taken_message(limit: RunLimit) -> str:
    return _("A %(scope)s limit for %(name)s already exists; change that one.") % {
        "scope": limit.scope,
        "name": repr(limit.name),
    }


def limit_save(*, limit: RunLimit, user=None) -> RunLimit:
    """Validate and save a limit created or changed in memory (as the admin's form does), audit
    what changed, and once it commits wake what the limit held (under its old key too, when
    its scope or name changed)."""
    before = audit_stored(limit)
    if isinstance(limit.name, str):  # anything else is refused by name below
        limit.name = limit_name_normalised(scope=limit.scope, name=limit.name)
    instance_validate(limit, validate=lambda: limit_validate(limit=limit))
    changes = audit_changes(before, audit_snapshot(limit))
    if not changes:
        return limit
    keys = {limit.key}
    if before is not None:
        keys.add(limit_key(before["scope"], before["name"]))
    try:
        with transaction.atomic():
            limit.save()
            action = AuditAction.CREATED if before is None else AuditAction.CHANGED
            audit_record(action=action, obj=limit, user=user, changes=changes)
    except IntegrityError as exc:  # lost a race with another save of the same scope and name
        raise InvalidInput({"name": _taken_message(limit)}) from exc
    _wake_on_commit(keys)
    return limit


def _assign(limit: RunLimit, fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(LIMIT_FIELDS)
    if unknown:
        raise InvalidInput({name: _("Unknown field.") for name in sorted(unknown)})
    for name, value in fields.items():
        setattr(limit, name, value)


def limit_create(*, user=None, **fields: Any) -> RunLimit:
    limit = RunLimit()
    _assign(limit, fields)
    return limit_save(limit=limit, user=user)


def limit_update(*, limit: RunLimit, user=None, **fields: Any) -> RunLimit:
    _assign(limit, fields)
    return limit_save(limit=limit, user=user)


def limit_delete(*, limit: RunLimit, user=None) -> None:
    """Remove the limit; what it held is sent again once the removal commits."""
    key = limit.key
    with transaction.atomic():
        audit_record(action=AuditAction.DELETED, obj=limit, user=user)
        limit.delete()
    _wake_on_commit({key})


def _wake_on_commit(keys: set[str]) -> None:
    # After the commit: limit_changed reads the limit as the workers will see it. Inside an
    # import's transaction, when the whole import commits (never, for a dry run).
    for key in sorted(keys):
        transaction.on_commit(partial(limit_changed, key))
