"""The seed-era routes, kept as aliases of the v1 API and marked deprecated in the schema:
POST v1/batch-job, GET v1/logs/job/{jobId}, POST jobs/{jobName}/start, GET scheduler."""

from django.core.exceptions import ValidationError
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from batchjobs.errors import InvalidInput, NotFound
from batchjobs.models import JobKind, ScheduleKind, Trigger
from batchjobs.models.job import job_name_validator
from batchjobs.models.schedule import IntervalUnit
from batchjobs.selectors.executions import execution_list
from batchjobs.selectors.jobs import job_get
from batchjobs.selectors.scheduler import scheduler_status
from batchjobs.services import operator
from batchjobs.services.jobs import job_create
from batchjobs.services.schedules import schedule_create

from .. import seed_serializers as seed
from .. import serializers as s
from ..permissions import ADD_JOB, ADD_SCHEDULE, RUN_JOB, VIEW_EXECUTION
from .base import IDEMPOTENCY_PARAMETER, ApiView, idempotency_key, valid
from .jobs import JobStart

# The seed's names for the service fields, so that its errors name the fields it sent.
SEED_FIELD_NAMES = {
    "http_url": "endpointUrl",
    "run_at": "scheduleTime",
    "start_at": "scheduleTime",
    "interval_every": "repeatIntervalHour",
}


@extend_schema(
    request=seed.SeedBatchJobRequestSerializer,
    responses={201: seed.SeedBatchJobResponseSerializer},
    deprecated=True,
)
class SeedBatchJobCreate(ApiView):
    """Seed-era: create an HTTP job and its schedule (once at scheduleTime, or every
    repeatIntervalHour hours from it), both or neither. Prefer POST v1/jobs + v1/schedules."""

    required_permissions = {"POST": (ADD_JOB, ADD_SCHEDULE)}

    def post(self, request: Request) -> Response:
        data = valid(seed.SeedBatchJobRequestSerializer, request.data)
        hours = data["repeatIntervalHour"]
        try:
            with transaction.atomic():
                job = job_create(
                    user=request.user,
                    name=data["name"],
                    description=data["description"],
                    kind=JobKind.HTTP,
                    http_url=data["endpointUrl"],
                )
                if hours:
                    schedule = schedule_create(
                        job=job,
                        user=request.user,
                        kind=ScheduleKind.INTERVAL,
                        interval_every=hours,
                        interval_unit=IntervalUnit.HOURS,
                        start_at=data["scheduleTime"],
                    )
                else:
                    schedule = schedule_create(
                        job=job,
                        user=request.user,
                        kind=ScheduleKind.ONCE,
                        run_at=data["scheduleTime"],
                    )
        except InvalidInput as exc:
            raise InvalidInput(
                {SEED_FIELD_NAMES.get(field, field): messages
                 for field, messages in exc.field_errors.items()}
            ) from exc  # fmt: skip
        body = {
            "id": job.pk,
            "name": job.name,
            "description": job.description,
            "endpointUrl": job.http_url,
            "scheduleTime": data["scheduleTime"],
            "repeatIntervalHour": hours,
            "scheduleId": schedule.pk,
            "nextRunTime": schedule.next_fire_at,
        }
        return Response(
            seed.SeedBatchJobResponseSerializer(body).data, status=status.HTTP_201_CREATED
        )


@extend_schema(
    parameters=[seed.SeedLogsQuerySerializer],
    responses={200: s.ExecutionSerializer(many=True)},
    deprecated=True,
)
class SeedJobLogs(ApiView):
    """Seed-era: the job's executions, newest first, as a plain list (at most `limit`).
    Prefer GET v1/executions?job={jobId}."""

    required_permissions = {"GET": (VIEW_EXECUTION,)}

    def get(self, request: Request, jobId: int) -> Response:
        limit = valid(seed.SeedLogsQuerySerializer, request.query_params)["limit"]
        job = job_get(job_id=jobId)
        executions = execution_list(job_id=job.pk)[:limit]
        return Response(s.ExecutionSerializer(executions, many=True).data)


@extend_schema(
    request=s.StartSerializer,
    parameters=[IDEMPOTENCY_PARAMETER],
    responses={200: seed.SeedStartResponseSerializer},
    deprecated=True,
)
class SeedJobStart(ApiView):
    """Seed-era: start a job by name; answers with the execution id.
    Prefer POST v1/jobs/{id}/start."""

    required_permissions = {"POST": (RUN_JOB,)}
    conflict = JobStart.conflict

    def post(self, request: Request, jobName: str) -> Response:
        try:
            job_name_validator(jobName)
        except ValidationError as exc:  # no job can have that name
            raise NotFound(f"no job named {jobName!r}") from exc
        data = valid(s.StartSerializer, request.data)
        execution = operator.job_start(
            job_name=jobName,
            params=data["params"],
            user=request.user,
            trigger=Trigger.API,
            idempotency_key=idempotency_key(request),
        )
        return Response(
            {"executionId": execution.pk, "jobName": execution.job.name, "status": execution.status}
        )


@extend_schema(responses={200: seed.SeedSchedulerSerializer}, deprecated=True)
class SeedScheduler(ApiView):
    """Seed-era scheduler status. Prefer GET v1/scheduler (adds workers and all statuses)."""

    required_permissions = {"GET": (VIEW_EXECUTION,)}

    def get(self, request: Request) -> Response:
        status_now = scheduler_status(ask_workers=False)
        return Response(seed.SeedSchedulerSerializer(status_now).data)
