"""Which events fire, for which notification: an execution's end (failure, recovered, slow) and
the dead-man check for missed runs (overdue schedules, fires beat skipped as missed).

Deciding claims a NotificationSent row per (notification, event, execution or missed fire); the
unique key makes the claim the once-only guard, and the row is handed to the channels to send
once the claim commits.
"""

import statistics
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.db.models.functions import Coalesce

from batchjobs.models import (
    BatchLog,
    BatchSchedule,
    ExecutionStatus,
    JobNotification,
    NotificationEvent,
    NotificationSent,
    OccurrenceOutcome,
    ScheduleOccurrence,
)
from batchjobs.models.clock import database_now
from batchjobs.models.set_aside import row_isolated

from .channels import notification_enqueue

# "Much longer than usual": over SLOW_FACTOR times the median of the job's last SLOW_SAMPLE
# completed runs, once there are SLOW_MIN_SAMPLES of them, and at least SLOW_MIN_SECONDS (a
# 40 ms run of a 10 ms job is not news).
SLOW_FACTOR = 3.0
SLOW_SAMPLE = 20
SLOW_MIN_SAMPLES = 5
SLOW_MIN_SECONDS = 1.0
# Fires skipped as missed (misfire policy "skip": occurrence records) are looked for this far
# back.
SKIPPED_FIRES_LOOKBACK = timedelta(hours=1)


def _median_recent_duration(execution: BatchLog) -> tuple[float | None, int]:
    """The median duration of the job's last SLOW_SAMPLE completed runs before this one."""
    rows = (
        BatchLog.objects.filter(
            job_id=execution.job_id,
            status=ExecutionStatus.COMPLETED,
            started_at__isnull=False,
            finished_at__isnull=False,
        )
        .filter(_before(execution))
        .order_by("-created_at", "-pk")
        .values_list("started_at", "finished_at")[:SLOW_SAMPLE]
    )
    durations = [
        (finished - started).total_seconds()
        for started, finished in rows
        if started is not None and finished is not None  # the filter's; told to the types
    ]
    if not durations:
        return None, 0
    return statistics.median(durations), len(durations)


def _before(execution: BatchLog) -> Q:
    return Q(created_at__lt=execution.created_at) | Q(
        created_at=execution.created_at, pk__lt=execution.pk
    )


def execution_events(
    *, execution: BatchLog, wanted: set[str] | frozenset[str] = frozenset(NotificationEvent.values)
) -> list[str]:
    """The events an execution that has just ended fired, among those `wanted` (the others are
    not worked out: each costs a query)."""
    if execution.status == ExecutionStatus.FAILED:
        return [NotificationEvent.FAILURE] if NotificationEvent.FAILURE in wanted else []
    if execution.status != ExecutionStatus.COMPLETED:
        return []
    events: list[str] = []
    if NotificationEvent.RECOVERED in wanted:
        previous = (
            BatchLog.objects.filter(
                job_id=execution.job_id,
                status__in=(ExecutionStatus.COMPLETED, ExecutionStatus.FAILED),
            )
            .filter(_before(execution))
            .order_by("-created_at", "-pk")
            .values_list("status", flat=True)
            .first()
        )
        if previous == ExecutionStatus.FAILED:
            events.append(NotificationEvent.RECOVERED)
    duration = execution.duration_seconds
    if NotificationEvent.SLOW in wanted and duration is not None and duration >= SLOW_MIN_SECONDS:
        median, samples = _median_recent_duration(execution)
        if samples >= SLOW_MIN_SAMPLES and median is not None and duration > SLOW_FACTOR * median:
            events.append(NotificationEvent.SLOW)
    return events


def _claim(notification: JobNotification, event: str, **about: Any) -> NotificationSent | None:
    """The row that says this event goes out through this notification, and the task that
    sends it once this commits; None if the event was claimed before."""
    try:
        with transaction.atomic():
            sent = NotificationSent.objects.create(notification=notification, event=event, **about)
    except IntegrityError:
        return None
    transaction.on_commit(lambda: notification_enqueue(sent_id=sent.pk))
    return sent


def notifications_execution_ended(*, execution_id: int, status: str) -> list[NotificationSent]:
    """Called once an attempt's outcome is committed: claim and enqueue the events it fired.
    Only a final COMPLETED or FAILED can fire one; the other statuses cost nothing."""
    if status not in (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED):
        return []
    subscriptions = list(JobNotification.objects.filter(job__executions=execution_id, enabled=True))
    if not subscriptions:
        return []
    execution = BatchLog.objects.select_related("job").get(pk=execution_id)
    wanted = {event for subscription in subscriptions for event in subscription.events}
    events = execution_events(execution=execution, wanted=wanted)
    claimed = []
    for subscription in subscriptions:
        for event in events:
            if event in subscription.events:
                sent = _claim(subscription, event, execution=execution)
                if sent is not None:
                    claimed.append(sent)
    return claimed


def notifications_check_missed(
    *, now: datetime | None = None, errors: list[str] | None = None
) -> list[NotificationSent]:
    """The dead-man check (a housekeeping task, every minute): for each notification that
    wants missed runs, claim an event per schedule whose next fire is overdue by more than its
    grace, and per fire that beat skipped as missed (misfire policy skip). A notification or
    event whose check raises is left out, its error appended to `errors`; the others go on."""
    now = now or database_now()
    errors = [] if errors is None else errors
    claimed: list[NotificationSent] = []
    subscriptions = JobNotification.objects.filter(
        enabled=True, on_missed=True, job__enabled=True
    ).select_related("job")
    for subscription in subscriptions:
        with row_isolated(f"missed-run check of notification {subscription.pk}", errors):
            claimed += _claim_missed(subscription, now=now, errors=errors)
    return claimed


def _claim_missed(
    subscription: JobNotification, *, now: datetime, errors: list[str]
) -> list[NotificationSent]:
    claimed = []
    overdue = BatchSchedule.objects.filter(
        job_id=subscription.job_id,
        paused=False,
        next_fire_at__lt=now - timedelta(seconds=subscription.missed_grace_seconds),
    )
    for schedule in overdue:
        with row_isolated(f"missed-run event of schedule {schedule.pk}", errors):
            sent = _claim(
                subscription,
                NotificationEvent.MISSED,
                schedule=schedule,
                due_at=schedule.next_fire_at,
            )
            if sent is not None:
                claimed.append(sent)
    # One event per schedule and beat pass that skipped fires as missed (misfire policy skip),
    # at the latest fire it skipped: a pass after a long outage is one message, not a
    # thousand. Keyed like an overdue fire, so a fire told overdue is not told again.
    skipped = (
        ScheduleOccurrence.objects.filter(
            schedule__job_id=subscription.job_id,
            outcome=OccurrenceOutcome.MISSED_SKIPPED,
            recorded_at__gte=now - SKIPPED_FIRES_LOOKBACK,
        )
        .values("schedule_id", "recorded_at")
        .annotate(last=Max(Coalesce("last_scheduled_for", "scheduled_for")))
        .order_by("schedule_id", "recorded_at")
    )
    for group in skipped:
        schedule_id = group["schedule_id"]
        with row_isolated(f"missed-run event of schedule {schedule_id}", errors):
            sent = _claim(
                subscription,
                NotificationEvent.MISSED,
                schedule_id=schedule_id,
                due_at=group["last"],
            )
            if sent is not None:
                claimed.append(sent)
    return claimed
