"""Serializers of the seed-era routes (views/seed_aliases.py): the seed's field names and shapes."""

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from batchjobs.models import ExecutionStatus
from batchjobs.models.job import HttpMethod
from batchjobs.selectors.scheduler import FireTiming, SchedulerStatus
from batchjobs.services.definition_serializers import (
    StrictCharField,
    StrictIntegerField,
    StrictSerializer,
)


class SeedLocalDateTimeField(serializers.DateTimeField):
    """A date and time as the seed's clients send it: with an offset it is that instant;
    without one it is a wall-clock time in BATCHJOBS_TIME_ZONE (the seed ran in its team's
    zone), not UTC. A time the zone skips (spring forward) is refused; of a time it shows twice
    (fall back) the first is meant, as for the fixed times of schedules (DESIGN.md §4.8)."""

    default_error_messages = {
        "skipped": _(
            "{value} does not exist in {zone}: the clocks skip it (daylight saving time). "
            "Give another time, or an offset."
        ),
    }

    def default_timezone(self) -> ZoneInfo:
        return ZoneInfo(settings.BATCHJOBS_TIME_ZONE)

    def enforce_timezone(self, value: datetime) -> datetime:
        if timezone.is_aware(value):
            return super().enforce_timezone(value)
        zone = self.default_timezone()
        local = value.replace(tzinfo=zone)  # fold=0: the first of a repeated time
        if local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != value:
            self.fail("skipped", value=value.isoformat(), zone=zone.key)
        return local


class SeedBatchJobRequestSerializer(StrictSerializer):
    name = StrictCharField(max_length=200)
    description = StrictCharField(required=False, allow_blank=True, default="")
    endpointUrl = StrictCharField(max_length=2000)
    httpMethod = serializers.ChoiceField(
        choices=HttpMethod.choices,
        default=HttpMethod.POST,
        help_text=_("The method the job calls endpointUrl with; POST, as the seed's calls."),
    )
    scheduleTime = SeedLocalDateTimeField(
        help_text=_(
            "The first run; with no repeat, the only one. Without an offset (as the seed sent "
            "it) a local time in the deployment's zone, BATCHJOBS_TIME_ZONE."
        )
    )
    repeatIntervalHour = StrictIntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=0,
        help_text=_("Repeat every this many hours from scheduleTime; 0 or null: run once."),
    )


class SeedBatchJobResponseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    endpointUrl = serializers.CharField()
    httpMethod = serializers.ChoiceField(choices=HttpMethod.choices)
    scheduleTime = serializers.DateTimeField()
    repeatIntervalHour = serializers.IntegerField(allow_null=True)
    scheduleId = serializers.IntegerField()
    nextRunTime = serializers.DateTimeField(allow_null=True)


class SeedLogsQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)


class SeedStartResponseSerializer(serializers.Serializer):
    executionId = serializers.IntegerField()
    jobName = serializers.CharField()
    status = serializers.CharField()


# The seed's words for how a job's run time was given.
SEED_TYPES = {
    FireTiming.NOW: "immediate",
    FireTiming.AFTER_DELAY: "delayed",
    FireTiming.AT: "scheduled",
    FireTiming.RECURRING: "recurring",
}


class SeedTypeField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=list(SEED_TYPES.values()), **kwargs)

    def to_representation(self, value: str) -> str:
        return SEED_TYPES[FireTiming(value)]


# Read from the whole SchedulerStatus: the next fire, and how its time was given.
class SeedNextJobSerializer(serializers.Serializer):
    def get_attribute(self, instance: SchedulerStatus) -> SchedulerStatus | None:
        return instance if instance.next_due is not None else None

    id = serializers.IntegerField(source="next_due.job_id")
    workflowName = serializers.CharField(source="next_due.job_name")
    scheduledTime = serializers.DateTimeField(source="next_due.at")
    type = SeedTypeField(
        source="next_due_timing",
        help_text=_(
            "immediate: once, now; delayed: once, after a delay; scheduled: once, at a date "
            "and time; recurring: an interval or cron schedule."
        ),
    )


class SeedSchedulerSerializer(serializers.Serializer):
    isRunning = serializers.BooleanField(source="beat_alive")
    totalJobs = serializers.IntegerField(source="total_jobs")
    pendingJobs = serializers.IntegerField(
        source="waiting",
        help_text=_(
            "Runs waiting: executions queued (due, waiting for a worker, a limit or a retry's "
            "time) plus the next fire of each live schedule."
        ),
    )
    runningJobs = serializers.IntegerField(source="running")
    completedJobs = serializers.SerializerMethodField()
    failedJobs = serializers.SerializerMethodField()
    nextJob = SeedNextJobSerializer(
        source="*",
        required=False,
        help_text=_("The next fire due; left out when none is."),
    )

    def get_completedJobs(self, status: SchedulerStatus) -> int:
        return status.counts[ExecutionStatus.COMPLETED]

    def get_failedJobs(self, status: SchedulerStatus) -> int:
        return status.counts[ExecutionStatus.FAILED]

    def to_representation(self, instance: SchedulerStatus) -> dict[str, Any]:
        body = super().to_representation(instance)
        if body["nextJob"] is None:  # the seed leaves the key out, not null
            del body["nextJob"]
        return body
