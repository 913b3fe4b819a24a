"""A job's notifications as an operator sets them: checked, saved and deleted with an audit
record."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils.translation import gettext as _

from batchjobs.http.guard import url_errors
from batchjobs.models import AuditAction, JobNotification, NotificationChannel, NotificationEvent

from ..audit import audit_changes, audit_record, audit_snapshot, audit_stored
from ..validation import instance_validate
from .channels import email_addresses


def notification_validate(*, notification: JobNotification) -> None:
    """Raise Django's ValidationError mapping each bad field to its messages."""
    errors: dict[str, list[str]] = {}
    target = (notification.target or "").strip()
    if notification.channel not in NotificationChannel.values:
        errors["channel"] = [
            _("Choose one of %(channels)s.") % {"channels": ", ".join(NotificationChannel.values)}
        ]
    elif not target:
        errors["target"] = [_("Enter where to send: email addresses or a URL.")]
    elif notification.channel == NotificationChannel.EMAIL:
        for address in email_addresses(target):
            try:
                validate_email(address)
            except DjangoValidationError:
                errors.setdefault("target", []).append(
                    _("%(address)s is not an email address.") % {"address": repr(address)}
                )
    else:
        problems = url_errors(target)
        if problems:
            errors["target"] = problems
    if not any(getattr(notification, f"on_{event}") for event in NotificationEvent.values):
        errors["on_failure"] = [_("Choose at least one event to send.")]
    if errors:
        raise DjangoValidationError(errors)


def notification_save(*, notification: JobNotification, user=None) -> JobNotification:
    notification.target = (notification.target or "").strip()
    instance_validate(
        notification, validate=lambda: notification_validate(notification=notification)
    )
    before = audit_stored(notification)
    with transaction.atomic():
        notification.save()
        changes = audit_changes(before, audit_snapshot(notification))
        if changes:
            action = AuditAction.CREATED if before is None else AuditAction.CHANGED
            audit_record(action=action, obj=notification, user=user, changes=changes)
    return notification


def notification_delete(*, notification: JobNotification, user=None) -> None:
    with transaction.atomic():
        audit_record(action=AuditAction.DELETED, obj=notification, user=user)
        notification.delete()
