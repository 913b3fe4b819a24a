from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from batchjobs.rules.masking import url_masked

from .labels import labelled, named


class NotificationChannel(models.TextChoices):
    EMAIL = "email", _("Email")
    WEBHOOK = "webhook", _("Webhook (JSON POST)")
    SLACK = "slack", _("Slack-compatible webhook")


class NotificationEvent(models.TextChoices):
    FAILURE = "failure", _("Failed")
    RECOVERED = "recovered", _("Recovered (succeeded after a failure)")
    SLOW = "slow", _("Much slower than usual")
    MISSED = "missed", _("Missed (an expected run did not happen)")


class NotificationStatus(models.TextChoices):
    PENDING = "PENDING", _("Pending")
    SENDING = "SENDING", _("Sending")
    SENT = "SENT", _("Sent")
    FAILED = "FAILED", _("Failed")


@named(_("job notification"), _("job notifications"))
class JobNotification(models.Model):
    """Where to tell someone about a job's events: an email list, a webhook or a Slack-style
    incoming webhook, and which events to tell."""

    job = labelled(
        _("job"),
        models.ForeignKey(
            "batchjobs.BatchJob",
            on_delete=models.CASCADE,
            related_name="notifications",
            help_text=_("The job whose events are sent."),
        ),
    )
    channel = labelled(
        _("channel"),
        models.CharField(
            max_length=16, choices=NotificationChannel.choices, help_text=_("How to send.")
        ),
    )
    target = labelled(
        _("target"),
        models.TextField(
            help_text=_(
                "Email: addresses separated by commas or spaces. Webhook and Slack: the http(s) "
                "URL to POST to (checked like an HTTP job's URL)."
            )
        ),
    )
    on_failure = labelled(
        _("on failure"),
        models.BooleanField(
            default=True,
            help_text=_("Send when an execution ends FAILED (after its last attempt)."),
        ),
    )
    on_recovered = labelled(
        _("on recovered"),
        models.BooleanField(
            default=True,
            help_text=_("Send when an execution completes after the previous one failed."),
        ),
    )
    on_slow = labelled(
        _("on slow"),
        models.BooleanField(
            default=False,
            help_text=_("Send when a run took more than 3x the median of the job's last 20 runs."),
        ),
    )
    on_missed = labelled(
        _("on missed"),
        models.BooleanField(
            default=False,
            help_text=_(
                "Dead-man: send when a schedule's fire is overdue by more than the grace below, or "
                "a fire was skipped as missed."
            ),
        ),
    )
    missed_grace_seconds = labelled(
        _("missed grace seconds"),
        models.PositiveIntegerField(
            default=300, help_text=_("Missed: how late a fire may be before it counts as missed.")
        ),
    )
    enabled = labelled(
        _("enabled"),
        models.BooleanField(default=True, help_text=_("A disabled notification sends nothing.")),
    )
    created_at = labelled(
        _("created at"),
        models.DateTimeField(auto_now_add=True, help_text=_("When it was created.")),
    )
    updated_at = labelled(
        _("updated at"),
        models.DateTimeField(auto_now=True, help_text=_("When it was last changed.")),
    )

    class Meta:
        ordering = ["job", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(channel__in=NotificationChannel.values),
                name="notification_channel_known",
            ),
            models.CheckConstraint(
                condition=Q(on_failure=True)
                | Q(on_recovered=True)
                | Q(on_slow=True)
                | Q(on_missed=True),
                name="notification_has_an_event",
            ),
            models.CheckConstraint(condition=~Q(target=""), name="notification_has_target"),
        ]

    def __str__(self) -> str:
        return gettext("%(channel)s to %(target)s") % {
            "channel": self.get_channel_display(),
            "target": self.target_shown[:60],
        }

    # Workers cache a job with whether it notifies (execution/lifecycle.py job_cached), keyed
    # on the job's updated_at: touching the job on every change here keeps that cache honest.
    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        self._touch_job()

    def delete(self, *args, **kwargs):
        deleted = super().delete(*args, **kwargs)
        self._touch_job()
        return deleted

    @property
    def target_shown(self) -> str:
        """The target as pages and logs show it: a webhook's URL holds its token, so it is
        shown with its scheme, host and port only."""
        if self.channel == NotificationChannel.EMAIL:
            return self.target
        return url_masked(self.target)

    def _touch_job(self) -> None:
        from django.db.models.functions import Now

        from .job import BatchJob

        BatchJob.objects.filter(pk=self.job_id).update(updated_at=Now())

    @property
    def events(self) -> list[str]:
        return [event for event in NotificationEvent.values if getattr(self, f"on_{event}")]


class NotificationSent(models.Model):
    """One event told through one notification. Its unique key makes each event sent at most
    once, whatever number of workers or redeliveries see it."""

    notification = labelled(
        _("notification"),
        models.ForeignKey(
            JobNotification,
            on_delete=models.CASCADE,
            related_name="sent",
            help_text=_("The notification it went through."),
        ),
    )
    event = labelled(
        _("event"),
        models.CharField(
            max_length=16, choices=NotificationEvent.choices, help_text=_("What happened.")
        ),
    )
    execution = labelled(
        _("execution"),
        models.ForeignKey(
            "batchjobs.BatchLog",
            null=True,
            blank=True,
            on_delete=models.CASCADE,
            related_name="notifications_sent",
            help_text=_(
                "The execution the event is about (failure, recovered, slow, skipped fire)."
            ),
        ),
    )
    schedule = labelled(
        _("schedule"),
        models.ForeignKey(
            "batchjobs.BatchSchedule",
            null=True,
            blank=True,
            on_delete=models.CASCADE,
            related_name="notifications_sent",
            help_text=_("Missed: the schedule whose fire is overdue."),
        ),
    )
    due_at = labelled(
        _("due at"),
        models.DateTimeField(
            null=True,
            blank=True,
            help_text=_("Missed: the overdue fire time (with the schedule: the key)."),
        ),
    )
    status = labelled(
        _("status"),
        models.CharField(
            max_length=8,
            choices=NotificationStatus.choices,
            default=NotificationStatus.PENDING,
            help_text=_("PENDING until a worker takes it, then SENT or FAILED."),
        ),
    )
    created_at = labelled(
        _("created at"),
        models.DateTimeField(auto_now_add=True, help_text=_("When the event was seen.")),
    )
    sent_at = labelled(
        _("sent at"),
        models.DateTimeField(null=True, blank=True, help_text=_("When sending ended.")),
    )
    error = labelled(_("error"), models.TextField(blank=True, help_text=_("Why sending failed.")))

    class Meta:
        verbose_name = _("notification sent")
        verbose_name_plural = _("notifications sent")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "event", "execution"],
                condition=Q(execution__isnull=False),
                name="notification_once_per_execution",
            ),
            models.UniqueConstraint(
                fields=["notification", "event", "schedule", "due_at"],
                condition=Q(schedule__isnull=False),
                name="notification_once_per_missed_fire",
            ),
            models.CheckConstraint(
                condition=Q(execution__isnull=False, schedule__isnull=True)
                | Q(execution__isnull=True, schedule__isnull=False, due_at__isnull=False),
                name="notification_about_one_thing",
            ),
            models.CheckConstraint(
                condition=Q(event__in=NotificationEvent.values), name="notification_event_known"
            ),
            models.CheckConstraint(
                condition=Q(status__in=NotificationStatus.values),
                name="notification_status_known",
            ),
        ]

    def __str__(self) -> str:
        about = (
            f"#{self.execution_id}"
            if self.execution_id
            else gettext("schedule %(id)s") % {"id": self.schedule_id}
        )
        return gettext("%(event)s of %(about)s: %(status)s") % {
            "event": self.event,
            "about": about,
            "status": self.status,
        }
