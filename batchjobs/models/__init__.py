from .audit import AuditAction, AuditEntry
from .backfill import BACKFILL_OPEN_STATUSES, Backfill, BackfillStatus
from .calendar import Calendar, CalendarPolicy
from .dependency import DependencyCondition, JobDependency, UpstreamMode
from .execution import (
    AttemptLogLine,
    AttemptStatus,
    BatchAttempt,
    BatchLog,
    ExecutionStatus,
    StepExecution,
    Trigger,
)
from .job import BatchJob, JobKind, OverlapPolicy
from .limit import LimitScope, RunLimit, limit_key
from .notification import (
    JobNotification,
    NotificationChannel,
    NotificationEvent,
    NotificationSent,
    NotificationStatus,
)
from .occurrence import OccurrenceOutcome, ScheduleOccurrence
from .preference import UserPreference
from .schedule import BatchSchedule, DstFoldPolicy, DstGapPolicy, MisfirePolicy, ScheduleKind
from .tag import JobTag

__all__ = [
    "BACKFILL_OPEN_STATUSES",
    "Backfill",
    "BackfillStatus",
    "Calendar",
    "CalendarPolicy",
    "DependencyCondition",
    "JobDependency",
    "OccurrenceOutcome",
    "ScheduleOccurrence",
    "UpstreamMode",
    "AuditAction",
    "AuditEntry",
    "AttemptLogLine",
    "AttemptStatus",
    "BatchAttempt",
    "BatchJob",
    "BatchLog",
    "BatchSchedule",
    "DstFoldPolicy",
    "DstGapPolicy",
    "ExecutionStatus",
    "JobKind",
    "JobTag",
    "JobNotification",
    "LimitScope",
    "MisfirePolicy",
    "NotificationChannel",
    "NotificationEvent",
    "NotificationSent",
    "NotificationStatus",
    "OverlapPolicy",
    "RunLimit",
    "ScheduleKind",
    "StepExecution",
    "limit_key",
    "Trigger",
    "UserPreference",
]
