from .examples import ExampleCustomer, WarehouseCustomer
from .execution import (
    AttemptStatus,
    BatchAttempt,
    BatchLog,
    ExecutionStatus,
    StepExecution,
    Trigger,
)
from .job import BatchJob, JobKind, OverlapPolicy
from .schedule import BatchSchedule, DstFoldPolicy, DstGapPolicy, MisfirePolicy, ScheduleKind

__all__ = [
    "AttemptStatus",
    "BatchAttempt",
    "BatchJob",
    "BatchLog",
    "BatchSchedule",
    "DstFoldPolicy",
    "DstGapPolicy",
    "ExampleCustomer",
    "ExecutionStatus",
    "JobKind",
    "MisfirePolicy",
    "OverlapPolicy",
    "ScheduleKind",
    "StepExecution",
    "Trigger",
    "WarehouseCustomer",
]
