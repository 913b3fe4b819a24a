"""The seed-era routes, kept as aliases of the v1 API and marked deprecated in the schema:
POST v1/batch-job, GET v1/logs/job/{jobId}, POST jobs/{jobName}/start, GET scheduler. They
answer as the seed (a Spring Batch service) did; README, "The seed-era routes"."""

from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer, JSONRenderer
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
from ..schema import ApiAutoSchema
from .base import IDEMPOTENCY_PARAMETER, ApiView, idempotency_key, valid
from .jobs import JobStart

# The seed's names for the service fields, so that its errors name the fields it sent.
SEED_FIELD_NAMES = {
    "http_url": "endpointUrl",
    "http_method": "httpMethod",
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
    repeatIntervalHour hours from it), both or neither. The job calls endpointUrl with
    httpMethod, POST unless the body says otherwise (the seed's orchestrator POSTed). A
    scheduleTime without an offset is a local time in BATCHJOBS_TIME_ZONE; one the zone skips
    (spring forward) is refused, of one it shows twice (fall back) the first is meant. Prefer
    POST v1/jobs + v1/schedules."""

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
                    http_method=data["httpMethod"],
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
            "httpMethod": job.http_method,
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


class LaunchedTextRenderer(BaseRenderer):
    """The seed's answer to a start, `Job launched with ID: N`: a protocol its clients parse,
    never translated. Spring wrote the controller's ResponseEntity<String> as text/plain to a
    client asking for text, for anything (`*/*`, what curl sends) or for nothing at all."""

    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        return f"Job launched with ID: {data['executionId']}".encode()


class JsonErrorsSchema(ApiAutoSchema):
    """Errors are JSON whatever the client asked for (SeedJobStart.finalize_response)."""

    def _get_response_for_code(
        self,
        serializer: Any,
        status_code: str,
        media_types: Any = None,
        direction: Any = "response",
    ) -> Any:
        if not str(status_code).startswith("2"):
            media_types = [JSONRenderer.media_type]
        return super()._get_response_for_code(serializer, status_code, media_types, direction)


@extend_schema(
    request=s.StartSerializer,
    parameters=[IDEMPOTENCY_PARAMETER],
    responses={
        (200, LaunchedTextRenderer.media_type): OpenApiTypes.STR,
        (200, JSONRenderer.media_type): seed.SeedStartResponseSerializer,
    },
    deprecated=True,
)
class SeedJobStart(ApiView):
    """Seed-era: start a job by name, as the seed's JobOperator.startNextInstance did: every
    call starts a new run. A batch job starts its next job instance: the parameters of its last
    instance stepped by its incrementer, or, for a job registered without one, `run.id` one
    more (Spring's RunIdIncrementer), with the body's `params` over them; an HTTP or handler
    job starts with the body's `params`. A client asking for text (`Accept: text/plain`, `*/*`
    or none, as curl and Spring clients do) gets `Job launched with ID: N`; one asking for JSON
    gets {executionId, jobName, status}. Errors are the API's JSON errors for both. Prefer
    POST v1/jobs/{id}/start or start-next-instance."""

    required_permissions = {"POST": (RUN_JOB,)}
    conflict = JobStart.conflict
    renderer_classes = (LaunchedTextRenderer, JSONRenderer)
    schema = JsonErrorsSchema()

    def post(self, request: Request, jobName: str) -> Response:
        try:
            job_name_validator(jobName)
        except ValidationError as exc:  # no job can have that name
            raise NotFound(_("no job named %(name)r") % {"name": jobName}) from exc
        data = valid(s.StartSerializer, request.data)
        execution = operator.job_launch(
            job_name=jobName,
            params=data["params"],
            user=request.user,
            trigger=Trigger.API,
            idempotency_key=idempotency_key(request),
        )
        return Response(
            {"executionId": execution.pk, "jobName": execution.job.name, "status": execution.status}
        )

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        # Only a launch has the seed's text: an error keeps the API's one error body (Spring
        # Boot, too, answered errors in JSON), and an OPTIONS answer is JSON as everywhere.
        if getattr(response, "exception", False) or request.method != "POST":
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


@extend_schema(responses={200: seed.SeedSchedulerSerializer}, deprecated=True)
class SeedScheduler(ApiView):
    """Seed-era scheduler status, the seed's card: isRunning (a beat is alive), totalJobs (jobs
    defined), pendingJobs (runs waiting: executions QUEUED, plus the next fire of each live
    schedule), runningJobs, completedJobs and failedJobs (executions by status), and nextJob,
    the next fire due, left out when none is; its type is immediate, delayed or scheduled for a
    once-schedule due now, after a delay or at a date and time, recurring for an interval or
    cron. Needs a user who may view executions, or no login at all with
    BATCHJOBS_SCHEDULER_STATUS_PUBLIC=true. Prefer GET v1/scheduler (adds workers and all
    statuses)."""

    required_permissions = {"GET": (VIEW_EXECUTION,)}

    def get_permissions(self) -> Sequence[Any]:
        if settings.BATCHJOBS_SCHEDULER_STATUS_PUBLIC:
            return [AllowAny()]
        return super().get_permissions()

    def get(self, request: Request) -> Response:
        status_now = scheduler_status(ask_workers=False)
        return Response(seed.SeedSchedulerSerializer(status_now).data)
