from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .labels import labelled


class AuditAction(models.TextChoices):
    CREATED = "created", _("Created")
    CHANGED = "changed", _("Changed")
    DELETED = "deleted", _("Deleted")
    STARTED = "started", _("Started")
    STOPPED = "stopped", _("Stopped")
    RESTARTED = "restarted", _("Restarted")
    ABANDONED = "abandoned", _("Abandoned")
    ENABLED = "enabled", _("Enabled")
    DISABLED = "disabled", _("Disabled")
    PAUSED = "paused", _("Paused")
    RESUMED = "resumed", _("Resumed")


class AuditEntry(models.Model):
    """Who did what to which job, schedule, execution or notification, and when. Written by the
    services in the transaction of the change itself; never edited."""

    at = labelled(
        _("at"), models.DateTimeField(auto_now_add=True, help_text=_("When it happened."))
    )
    actor = labelled(
        _("actor"),
        models.ForeignKey(
            settings.AUTH_USER_MODEL,
            null=True,
            blank=True,
            on_delete=models.SET_NULL,
            related_name="+",
            help_text=_(
                "The user who did it; empty for the system, the command line or a deleted user."
            ),
        ),
    )
    actor_name = labelled(
        _("actor name"),
        models.CharField(
            max_length=150,
            help_text=_(
                "The user's name when it happened, or 'system' / 'cli' when no user acted."
            ),
        ),
    )
    action = labelled(
        _("action"),
        models.CharField(max_length=16, choices=AuditAction.choices, help_text=_("What was done.")),
    )
    content_type = labelled(
        _("content type"),
        models.ForeignKey(
            ContentType, on_delete=models.PROTECT, help_text=_("The kind of object acted on.")
        ),
    )
    object_id = labelled(
        _("object id"),
        models.PositiveBigIntegerField(help_text=_("The id of the object acted on.")),
    )
    object_repr = labelled(
        _("object repr"),
        models.CharField(
            max_length=300,
            help_text=_("The object as it read then; it may since have been deleted."),
        ),
    )
    job = labelled(
        _("job"),
        models.ForeignKey(
            "batchjobs.BatchJob",
            null=True,
            blank=True,
            on_delete=models.SET_NULL,
            related_name="audit_entries",
            help_text=_("The job the object is or belongs to, for the job's audit trail."),
        ),
    )
    job_name = labelled(
        _("job name"),
        models.CharField(
            max_length=200,
            blank=True,
            help_text=_("The job's name then, kept after it is deleted."),
        ),
    )
    changes = labelled(
        _("changes"),
        models.JSONField(
            default=dict,
            blank=True,
            encoder=DjangoJSONEncoder,
            help_text=_(
                'Changed fields as {"field": [before, after]}; secret header values masked.'
            ),
        ),
    )

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["job", "-at"], name="audit_job_recent_idx"),
            models.Index(fields=["content_type", "object_id", "-at"], name="audit_object_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(action__in=AuditAction.values), name="audit_action_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.action} {self.object_repr}"
