from .audit import AuditAction, AuditEntry
from .execution import (
    AttemptStatus,
    BatchAttempt,
    BatchLog,
    ExecutionStatus,
    StepExecution,
    Trigger,
)
from .job import BatchJob, JobKind, OverlapPolicy
from .notification import (
    JobNotification,
    NotificationChannel,
    NotificationEvent,
    NotificationSent,
    NotificationStatus,
)
from .schedule import BatchSchedule, DstFoldPolicy, DstGapPolicy, MisfirePolicy, ScheduleKind

__all__ = [
    "AuditAction",
    "AuditEntry",
    "AttemptStatus",
    "BatchAttempt",
    "BatchJob",
    "BatchLog",
    "BatchSchedule",
    "DstFoldPolicy",
    "DstGapPolicy",
    "ExecutionStatus",
    "JobKind",
    "JobNotification",
    "MisfirePolicy",
    "NotificationChannel",
    "NotificationEvent",
    "NotificationSent",
    "NotificationStatus",
    "OverlapPolicy",
    "ScheduleKind",
    "StepExecution",
    "Trigger",
]
