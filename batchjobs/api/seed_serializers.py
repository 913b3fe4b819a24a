"""Serializers of the seed-era routes (views/seed_aliases.py): the seed's field names and shapes."""

from rest_framework import serializers

from batchjobs.models import ExecutionStatus
from batchjobs.services.definition_serializers import (
    StrictCharField,
    StrictIntegerField,
    StrictSerializer,
)


class SeedBatchJobRequestSerializer(StrictSerializer):
    name = StrictCharField(max_length=200)
    description = StrictCharField(required=False, allow_blank=True, default="")
    endpointUrl = StrictCharField(max_length=2000)
    scheduleTime = serializers.DateTimeField(
        help_text="The first run; with no repeat, the only one."
    )
    repeatIntervalHour = StrictIntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=0,
        help_text="Repeat every this many hours from scheduleTime; 0 or null: run once.",
    )


class SeedBatchJobResponseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    endpointUrl = serializers.CharField()
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


class SeedNextJobSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="job_id")
    workflowName = serializers.CharField(source="job_name")
    scheduledTime = serializers.DateTimeField(source="at")
    type = serializers.CharField(source="schedule_kind")


class SeedSchedulerSerializer(serializers.Serializer):
    isRunning = serializers.BooleanField(source="beat_alive")
    totalJobs = serializers.IntegerField(source="total_jobs")
    pendingJobs = serializers.SerializerMethodField()
    runningJobs = serializers.IntegerField(source="running")
    completedJobs = serializers.SerializerMethodField()
    failedJobs = serializers.SerializerMethodField()
    nextJob = SeedNextJobSerializer(source="next_due", allow_null=True)

    def get_pendingJobs(self, status) -> int:
        return status.counts[ExecutionStatus.QUEUED]

    def get_completedJobs(self, status) -> int:
        return status.counts[ExecutionStatus.COMPLETED]

    def get_failedJobs(self, status) -> int:
        return status.counts[ExecutionStatus.FAILED]
