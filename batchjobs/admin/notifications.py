"""Notifications: configured per job (inline on the job's page), and a read-only record of what
was sent, with the error of each send that failed."""

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from batchjobs.models import BatchLog, JobNotification, NotificationSent

from .columns import moment_column
from .display import change_link, moment, text_pre
from .forms import JobNotificationInlineForm


class JobNotificationInline(admin.StackedInline):
    model = JobNotification
    form = JobNotificationInlineForm
    extra = 0
    fields = (
        ("channel", "enabled"),
        "target",
        ("on_failure", "on_recovered", "on_slow", "on_missed"),
        "missed_grace_seconds",
    )
    readonly_fields = ("target_masked",)

    def get_fields(self, request: HttpRequest, obj=None):
        # Who may only look sees a webhook's URL without its token; editors need the value.
        if self.has_change_permission(request, obj):
            return self.fields
        return tuple("target_masked" if field == "target" else field for field in self.fields)

    @admin.display(description=_("target"))
    def target_masked(self, notification: JobNotification) -> str:
        return notification.target_shown


@admin.register(NotificationSent)
class NotificationSentAdmin(admin.ModelAdmin):
    list_display = ("created", "event", "job", "about", "channel", "status", "sent")
    list_filter = ("status", "event", "notification__channel", "notification__job")
    list_select_related = ("notification__job",)
    show_full_result_count = False
    fields = (
        "notification", "event", "execution", "schedule", "due", "status", "created", "sent",
        "error_text",
    )  # fmt: skip
    readonly_fields = fields
    due = moment_column(NotificationSent, "due_at")
    created = moment_column(NotificationSent, "created_at")
    sent = moment_column(NotificationSent, "sent_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description=_("job"))
    def job(self, sent: NotificationSent) -> str:
        return sent.notification.job.name

    @admin.display(description=_("channel"))
    def channel(self, sent: NotificationSent) -> str:
        return sent.notification.get_channel_display()

    @admin.display(description=_("about"))
    def about(self, sent: NotificationSent) -> str:
        if sent.execution_id:
            return change_link(BatchLog, sent.execution_id, f"#{sent.execution_id}")
        return format_html(
            gettext("schedule {schedule}, due {due}"),
            schedule=sent.schedule_id,
            due=moment(sent.due_at),
        )

    @admin.display(description=_("error"))
    def error_text(self, sent: NotificationSent) -> str:
        return text_pre(sent.error)
