from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q


class AuditAction(models.TextChoices):
    CREATED = "created"
    CHANGED = "changed"
    DELETED = "deleted"
    STARTED = "started"
    STOPPED = "stopped"
    RESTARTED = "restarted"
    ABANDONED = "abandoned"
    ENABLED = "enabled"
    DISABLED = "disabled"
    PAUSED = "paused"
    RESUMED = "resumed"


class AuditEntry(models.Model):
    """Who did what to which job, schedule, execution or notification, and when. Written by the
    services in the transaction of the change itself; never edited."""

    at = models.DateTimeField(auto_now_add=True, help_text="When it happened.")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The user who did it; empty for the system, the command line or a deleted user.",
    )
    actor_name = models.CharField(
        max_length=150,
        help_text="The user's name when it happened, or 'system' / 'cli' when no user acted.",
    )
    action = models.CharField(
        max_length=16, choices=AuditAction.choices, help_text="What was done."
    )
    content_type = models.ForeignKey(
        ContentType, on_delete=models.PROTECT, help_text="The kind of object acted on."
    )
    object_id = models.PositiveBigIntegerField(help_text="The id of the object acted on.")
    object_repr = models.CharField(
        max_length=300, help_text="The object as it read then; it may since have been deleted."
    )
    job = models.ForeignKey(
        "batchjobs.BatchJob",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_entries",
        help_text="The job the object is or belongs to, for the job's audit trail.",
    )
    job_name = models.CharField(
        max_length=200, blank=True, help_text="The job's name then, kept after it is deleted."
    )
    changes = models.JSONField(
        default=dict,
        blank=True,
        encoder=DjangoJSONEncoder,
        help_text='Changed fields as {"field": [before, after]}; secret header values masked.',
    )

    class Meta:
        verbose_name = "audit entry"
        verbose_name_plural = "audit entries"
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
