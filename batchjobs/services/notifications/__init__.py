"""Notifications per job (DESIGN.md §5): which events fire (rules), what is said about each
(messages), and how it is sent (channels); configuration saves a job's notifications.

The service functions the rest of batchjobs calls are these:
"""

from .channels import notification_deliver, notifications_relay_pending
from .configuration import notification_delete, notification_save, notification_validate
from .rules import notifications_check_missed, notifications_execution_ended

__all__ = [
    "notification_delete",
    "notification_deliver",
    "notification_save",
    "notification_validate",
    "notifications_check_missed",
    "notifications_execution_ended",
    "notifications_relay_pending",
]
