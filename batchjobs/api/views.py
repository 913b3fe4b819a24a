"""The REST API: one view per operation, each a few lines between a serializer and a service.

Reads go through batchjobs.selectors, writes through batchjobs.services (the JobOperator for
start/stop/restart/abandon); errors become HTTP answers in batchjobs.api.errors, once.
"""

from typing import Any

from django.db import transaction
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework import generics, serializers, status
from rest_framework.authentication import TokenAuthentication
from rest_framework.metadata import SimpleMetadata
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from batchjobs import selectors
from batchjobs.batch.registry import batch_job_get, batch_job_names
from batchjobs.errors import InvalidInput, NotFound
from batchjobs.handlers.registry import handlers_all
from batchjobs.models import BatchJob, BatchSchedule, JobKind, ScheduleKind, Trigger
from batchjobs.models.job import job_name_validator
from batchjobs.models.schedule import IntervalUnit
from batchjobs.services import operator
from batchjobs.services.jobs import (
    job_create,
    job_delete,
    job_set_enabled,
    job_test_fire,
    job_update,
)
from batchjobs.services.schedules import (
    schedule_create,
    schedule_delete,
    schedule_pause,
    schedule_preview,
    schedule_resume,
    schedule_update,
)

from . import serializers as s
from .filters import ExecutionFilter, JobFilter, ScheduleFilter
from .parsers import BoundedJSONParser
from .permissions import (
    ADD_JOB,
    ADD_SCHEDULE,
    CHANGE_JOB,
    CHANGE_SCHEDULE,
    DELETE_JOB,
    DELETE_SCHEDULE,
    RUN_JOB,
    VIEW_EXECUTION,
    VIEW_JOB,
    VIEW_SCHEDULE,
    HasRequiredPermissions,
    SchemaAccess,
)
from .schema import ApiAutoSchema

IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_MAX = 255

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="The same key (per job) returns the same execution instead of starting another.",
)


class Pagination(LimitOffsetPagination):
    max_limit = 1000


class ApiMetadata(SimpleMetadata):
    """OPTIONS answers: the request fields only where a view has a serializer for them; the
    schema at /api/schema/ documents every operation in full."""

    def determine_actions(self, request: Request, view) -> dict:
        if getattr(view, "serializer_class", None) is None:
            return {}
        return super().determine_actions(request, view)


class ChallengeMixin:
    """Answer an anonymous caller 401 with a `Token` challenge: DRF answers 403 when the first
    authenticator in settings (SessionAuthentication) has no challenge to offer."""

    def get_authenticate_header(self, request: Request) -> str:
        return TokenAuthentication().authenticate_header(request)


class ApiMixin(ChallengeMixin):
    """What every API view shares: JSON in, model permissions, errors mapped once, a 401 for
    the anonymous, and no filters unless a list view asks."""

    permission_classes = (HasRequiredPermissions,)
    parser_classes = (BoundedJSONParser,)
    metadata_class = ApiMetadata
    filter_backends = ()
    pagination_class = None
    required_permissions: dict[str, tuple[str, ...]] = {}
    # For the schema: when the operation answers 409 (and 404 without an id in its path).
    conflict = ""
    not_found = ""
    schema = ApiAutoSchema()

    def get_object(self):
        try:
            return super().get_object()
        except Http404 as exc:
            model = self.get_queryset().model._meta.verbose_name
            raise NotFound(f"no {model} {self.kwargs.get('pk')}") from exc


class ListMixin:
    """Before ApiMixin in a list view's bases: the list's filters, ordering and pages."""

    filter_backends = api_settings.DEFAULT_FILTER_BACKENDS
    pagination_class = Pagination


def valid(serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any) -> dict:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def no_body(request: Request) -> None:
    """Operations without a body refuse one that carries fields (as every body refuses
    unknown fields)."""
    valid(s.StrictSerializer, request.data if request.data is not None else {})


def idempotency_key(request: Request) -> str:
    key = request.headers.get(IDEMPOTENCY_HEADER, "")
    if len(key) > IDEMPOTENCY_KEY_MAX or not key.isprintable():
        raise InvalidInput(
            {IDEMPOTENCY_HEADER: f"At most {IDEMPOTENCY_KEY_MAX} printable characters."}
        )
    return key


# --- jobs ------------------------------------------------------------------------------------


@extend_schema_view(
    get=extend_schema(summary="List jobs"), post=extend_schema(summary="Create a job")
)
class JobListCreate(ListMixin, ApiMixin, generics.ListCreateAPIView):
    """List jobs (with their latest execution and schedule count) or create one."""

    serializer_class = s.JobSerializer
    filterset_class = JobFilter
    ordering_fields = ("name", "created_at", "updated_at", "id")
    required_permissions = {"GET": (VIEW_JOB,), "POST": (ADD_JOB,)}

    def get_queryset(self):
        return selectors.job_list()

    def create(self, request: Request, *args, **kwargs) -> Response:
        data = valid(s.JobSerializer, request.data)
        job = job_create(user=request.user, **data)
        return Response(
            s.JobSerializer(selectors.job_get(job_id=job.pk)).data, status=status.HTTP_201_CREATED
        )


@extend_schema_view(
    get=extend_schema(summary="Read a job"),
    put=extend_schema(summary="Change a job"),
    patch=extend_schema(summary="Change some fields of a job"),
    delete=extend_schema(summary="Delete a job, its schedules and executions"),
)
class JobDetail(ApiMixin, generics.RetrieveUpdateDestroyAPIView):
    """Read, change or delete a job. PUT needs name and kind and PATCH does not; with both,
    fields left out keep their values. Secret header values sent as •••••• keep theirs."""

    serializer_class = s.JobSerializer
    required_permissions = {
        "GET": (VIEW_JOB,),
        "PUT": (CHANGE_JOB,),
        "PATCH": (CHANGE_JOB,),
        "DELETE": (DELETE_JOB,),
    }
    conflict = "a job with queued or running executions cannot be deleted."

    def get_queryset(self):
        return selectors.job_list()

    def update(self, request: Request, *args, partial: bool = False, **kwargs) -> Response:
        job = self.get_object()
        data = valid(s.JobSerializer, request.data, instance=job, partial=partial)
        job_update(job=job, user=request.user, **data)
        return Response(s.JobSerializer(selectors.job_get(job_id=job.pk)).data)

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        job = self.get_object()
        job_delete(job=job, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(
    request=s.StartSerializer,
    parameters=[IDEMPOTENCY_PARAMETER],
    responses={202: s.ExecutionSerializer},
)
class JobStart(ApiMixin, generics.GenericAPIView):
    """Run the job now with these parameters. A batch job starts a new job instance."""

    queryset = BatchJob.objects.all()
    required_permissions = {"POST": (RUN_JOB,)}
    conflict = "the job is disabled, or (batch) this job instance completed, runs, or failed."

    def post(self, request: Request, pk: int) -> Response:
        job = self.get_object()
        data = valid(s.StartSerializer, request.data)
        execution = operator.start(
            job.name,
            data["params"],
            user=request.user,
            trigger=Trigger.API,
            idempotency_key=idempotency_key(request),
        )
        return Response(s.ExecutionSerializer(execution).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(request=None, responses={202: s.ExecutionSerializer})
class JobStartNextInstance(ApiMixin, generics.GenericAPIView):
    """Batch jobs: start the instance after the last, with the parameters its incrementer makes."""

    queryset = BatchJob.objects.all()
    required_permissions = {"POST": (RUN_JOB,)}
    conflict = "the job has no parameter incrementer, is disabled, or the instance exists."

    def post(self, request: Request, pk: int) -> Response:
        no_body(request)
        execution = operator.start_next_instance(self.get_object().name, user=request.user)
        return Response(s.ExecutionSerializer(execution).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(request=None, responses={200: s.JobSerializer})
class JobEnable(ApiMixin, generics.GenericAPIView):
    """Enable the job: its schedules fire again and it can be started."""

    queryset = BatchJob.objects.all()
    required_permissions = {"POST": (CHANGE_JOB,)}
    enabled = True

    def post(self, request: Request, pk: int) -> Response:
        no_body(request)
        job = job_set_enabled(job=self.get_object(), enabled=self.enabled, user=request.user)
        return Response(s.JobSerializer(selectors.job_get(job_id=job.pk)).data)


class JobDisable(JobEnable):
    """Disable the job: its schedules move on without firing and it cannot be started."""

    enabled = False


@extend_schema(request=None, responses={200: s.TestFireSerializer})
class JobTestFire(ApiMixin, generics.GenericAPIView):
    """HTTP jobs: send the job's request once, now, and show the request and the response.
    Nothing is recorded or scheduled. The call goes through the same hardened client as a run
    (destination checks, size cap), bounded by the job's timeout and at most 30 seconds."""

    queryset = BatchJob.objects.all()
    required_permissions = {"POST": (RUN_JOB,)}
    conflict = "the job is not an HTTP job."

    def post(self, request: Request, pk: int) -> Response:
        no_body(request)
        return Response(job_test_fire(job=self.get_object()))


# --- schedules -------------------------------------------------------------------------------


@extend_schema_view(
    get=extend_schema(summary="List schedules"), post=extend_schema(summary="Create a schedule")
)
class ScheduleListCreate(ListMixin, ApiMixin, generics.ListCreateAPIView):
    """List schedules or create one (`delay_seconds`: a once-schedule that fires that soon)."""

    serializer_class = s.ScheduleSerializer
    filterset_class = ScheduleFilter
    ordering_fields = ("next_fire_at", "created_at", "id")
    required_permissions = {"GET": (VIEW_SCHEDULE,), "POST": (ADD_SCHEDULE,)}

    def get_queryset(self):
        return selectors.schedule_list()

    def create(self, request: Request, *args, **kwargs) -> Response:
        data = valid(s.ScheduleSerializer, request.data)
        schedule = schedule_create(user=request.user, **data)
        return Response(s.ScheduleSerializer(schedule).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    get=extend_schema(summary="Read a schedule"),
    put=extend_schema(summary="Change a schedule"),
    patch=extend_schema(summary="Change some fields of a schedule"),
    delete=extend_schema(summary="Delete a schedule"),
)
class ScheduleDetail(ApiMixin, generics.RetrieveUpdateDestroyAPIView):
    """Read, change or delete a schedule. A change of timing recomputes the next fire."""

    serializer_class = s.ScheduleSerializer
    required_permissions = {
        "GET": (VIEW_SCHEDULE,),
        "PUT": (CHANGE_SCHEDULE,),
        "PATCH": (CHANGE_SCHEDULE,),
        "DELETE": (DELETE_SCHEDULE,),
    }

    def get_queryset(self):
        return selectors.schedule_list()

    def update(self, request: Request, *args, partial: bool = False, **kwargs) -> Response:
        schedule = self.get_object()
        data = valid(s.ScheduleSerializer, request.data, instance=schedule, partial=partial)
        schedule = schedule_update(schedule=schedule, user=request.user, **data)
        return Response(s.ScheduleSerializer(schedule).data)

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        schedule_delete(schedule=self.get_object(), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(request=None, responses={200: s.ScheduleSerializer})
class SchedulePause(ApiMixin, generics.GenericAPIView):
    """Pause the schedule: it does not fire until resumed."""

    queryset = BatchSchedule.objects.select_related("job")
    required_permissions = {"POST": (CHANGE_SCHEDULE,)}
    service = staticmethod(schedule_pause)

    def post(self, request: Request, pk: int) -> Response:
        no_body(request)
        schedule = self.service(schedule=self.get_object(), user=request.user)
        return Response(s.ScheduleSerializer(schedule).data)


class ScheduleResume(SchedulePause):
    """Resume the schedule; fires missed while paused meet its misfire policy."""

    service = staticmethod(schedule_resume)


@extend_schema(parameters=[s.PreviewQuerySerializer], responses={200: s.PreviewSerializer})
class SchedulePreview(ApiMixin, generics.GenericAPIView):
    """The next `count` fire times, in UTC and in the schedule's zone, DST changes marked."""

    queryset = BatchSchedule.objects.select_related("job")
    required_permissions = {"GET": (VIEW_SCHEDULE,)}

    def get(self, request: Request, pk: int) -> Response:
        schedule = self.get_object()
        count = valid(s.PreviewQuerySerializer, request.query_params)["count"]
        fires = schedule_preview(schedule=schedule, count=count)
        return Response(
            s.PreviewSerializer(
                {"schedule": schedule.pk, "timezone": schedule.timezone, "fires": fires}
            ).data
        )


# --- executions ------------------------------------------------------------------------------


class ExecutionList(ListMixin, ApiMixin, generics.ListAPIView):
    """Executions, newest first; filter by job, schedule, status, trigger and creation time."""

    serializer_class = s.ExecutionSerializer
    filterset_class = ExecutionFilter
    ordering_fields = ("created_at", "started_at", "finished_at", "id", "status")
    required_permissions = {"GET": (VIEW_EXECUTION,)}

    def get_queryset(self):
        return selectors.execution_list()


@extend_schema(responses={200: s.ExecutionDetailSerializer})
class ExecutionDetail(ApiMixin, generics.GenericAPIView):
    """One execution with its attempts, steps and execution context."""

    required_permissions = {"GET": (VIEW_EXECUTION,)}

    def get(self, request: Request, pk: int) -> Response:
        execution = selectors.execution_get(execution_id=pk)
        return Response(s.ExecutionDetailSerializer(execution).data)


@extend_schema(request=None, responses={200: s.ExecutionSerializer})
class ExecutionStop(ApiMixin, generics.GenericAPIView):
    """Stop: a queued execution ends STOPPED at once; a running one turns STOPPING and stops
    at its next chunk boundary (batch) or at once (HTTP and handler jobs)."""

    required_permissions = {"POST": (RUN_JOB,)}
    conflict = "the execution has already ended."

    def post(self, request: Request, pk: int) -> Response:
        no_body(request)
        return Response(s.ExecutionSerializer(operator.stop(pk, user=request.user)).data)


@extend_schema(request=None, responses={202: s.ExecutionSerializer})
class ExecutionRestart(ApiMixin, generics.GenericAPIView):
    """Restart a FAILED or STOPPED execution: a new execution of the same instance that resumes
    from the saved context; completed steps are not run again."""

    required_permissions = {"POST": (RUN_JOB,)}
    conflict = "only a FAILED or STOPPED execution, not yet restarted, can be restarted."

    def post(self, request: Request, pk: int) -> Response:
        no_body(request)
        execution = operator.restart(pk, user=request.user)
        return Response(s.ExecutionSerializer(execution).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(request=None, responses={200: s.ExecutionSerializer})
class ExecutionAbandon(ApiMixin, generics.GenericAPIView):
    """Abandon a STOPPED or FAILED execution: it will never be restarted."""

    required_permissions = {"POST": (RUN_JOB,)}
    conflict = "only a STOPPED or FAILED execution can be abandoned."

    def post(self, request: Request, pk: int) -> Response:
        no_body(request)
        return Response(s.ExecutionSerializer(operator.abandon(pk, user=request.user)).data)


@extend_schema(parameters=[s.RunningQuerySerializer], responses={200: s.RunningSerializer})
class ExecutionRunning(ApiMixin, generics.GenericAPIView):
    """The ids of the job's queued and running executions (the JobOperator's)."""

    required_permissions = {"GET": (VIEW_EXECUTION,)}
    not_found = "no job has that name."

    def get(self, request: Request) -> Response:
        name = valid(s.RunningQuerySerializer, request.query_params)["job"]
        return Response({"job": name, "execution_ids": operator.running_executions(name)})


@extend_schema(responses={200: s.ExecutionSummarySerializer})
class ExecutionSummary(ApiMixin, generics.GenericAPIView):
    """The JobOperator's summary of the execution."""

    required_permissions = {"GET": (VIEW_EXECUTION,)}

    def get(self, request: Request, pk: int) -> Response:
        return Response(s.ExecutionSummarySerializer(operator.summary(pk)).data)


@extend_schema(responses={200: s.StepSummarySerializer(many=True)})
class ExecutionStepSummaries(ApiMixin, generics.GenericAPIView):
    """The JobOperator's summaries of the execution's steps (and partitions)."""

    required_permissions = {"GET": (VIEW_EXECUTION,)}

    def get(self, request: Request, pk: int) -> Response:
        return Response(s.StepSummarySerializer(operator.step_summaries(pk), many=True).data)


# --- registries and the scheduler ------------------------------------------------------------


@extend_schema(responses={200: s.HandlerSerializer(many=True)})
class HandlerList(ApiMixin, generics.GenericAPIView):
    """The registered handlers with their parameter schemas."""

    required_permissions = {"GET": (VIEW_JOB,)}

    def get(self, request: Request) -> Response:
        return Response(s.HandlerSerializer(handlers_all(), many=True).data)


@extend_schema(responses={200: s.BatchJobDefinitionSerializer(many=True)})
class BatchJobList(ApiMixin, generics.GenericAPIView):
    """The registered batch jobs with their parameter schemas."""

    required_permissions = {"GET": (VIEW_JOB,)}

    def get(self, request: Request) -> Response:
        registered = [batch_job_get(name) for name in batch_job_names()]
        return Response(s.BatchJobDefinitionSerializer(registered, many=True).data)


@extend_schema(responses={200: s.SchedulerStatusSerializer})
class SchedulerStatus(ApiMixin, generics.GenericAPIView):
    """Whether beat is alive, the workers that answer, executions by status, the next fire."""

    required_permissions = {"GET": (VIEW_EXECUTION,)}

    def get(self, request: Request) -> Response:
        return Response(s.SchedulerStatusSerializer(selectors.scheduler_status()).data)


@csrf_exempt  # it changes nothing, so a POST gets the same 404 (not a CSRF page)
def api_not_found(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    """Any other path under /api/: a JSON 404 like every other API error, not an HTML page."""
    return JsonResponse(
        {"detail": f"No API endpoint at {request.path}.", "code": "not_found"}, status=404
    )


# --- the schema ------------------------------------------------------------------------------


class SchemaView(ChallengeMixin, SpectacularAPIView):
    """The OpenAPI 3 schema; public unless BATCHJOBS_API_SCHEMA_PUBLIC is off."""

    permission_classes = (SchemaAccess,)


class DocsView(ChallengeMixin, SpectacularSwaggerView):
    """Swagger UI over the schema; public unless BATCHJOBS_API_SCHEMA_PUBLIC is off."""

    permission_classes = (SchemaAccess,)
    url_name = "api:schema"


# --- the seed-era routes, kept as aliases ----------------------------------------------------

# The seed's names for the service fields, so that its errors name the fields it sent.
SEED_FIELD_NAMES = {
    "http_url": "endpointUrl",
    "run_at": "scheduleTime",
    "start_at": "scheduleTime",
    "interval_every": "repeatIntervalHour",
}


@extend_schema(
    request=s.SeedBatchJobRequestSerializer,
    responses={201: s.SeedBatchJobResponseSerializer},
    deprecated=True,
)
class SeedBatchJobCreate(ApiMixin, generics.GenericAPIView):
    """Seed-era: create an HTTP job and its schedule (once at scheduleTime, or every
    repeatIntervalHour hours from it), both or neither. Prefer POST v1/jobs + v1/schedules."""

    required_permissions = {"POST": (ADD_JOB, ADD_SCHEDULE)}

    def post(self, request: Request) -> Response:
        data = valid(s.SeedBatchJobRequestSerializer, request.data)
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
        return Response(s.SeedBatchJobResponseSerializer(body).data, status=status.HTTP_201_CREATED)


@extend_schema(
    parameters=[s.SeedLogsQuerySerializer],
    responses={200: s.ExecutionSerializer(many=True)},
    deprecated=True,
)
class SeedJobLogs(ApiMixin, generics.GenericAPIView):
    """Seed-era: the job's executions, newest first, as a plain list (at most `limit`).
    Prefer GET v1/executions?job={jobId}."""

    required_permissions = {"GET": (VIEW_EXECUTION,)}

    def get(self, request: Request, jobId: int) -> Response:
        limit = valid(s.SeedLogsQuerySerializer, request.query_params)["limit"]
        job = selectors.job_get(job_id=jobId)
        executions = selectors.execution_list(job_id=job.pk)[:limit]
        return Response(s.ExecutionSerializer(executions, many=True).data)


@extend_schema(
    request=s.StartSerializer,
    parameters=[IDEMPOTENCY_PARAMETER],
    responses={200: s.SeedStartResponseSerializer},
    deprecated=True,
)
class SeedJobStart(ApiMixin, generics.GenericAPIView):
    """Seed-era: start a job by name; answers with the execution id.
    Prefer POST v1/jobs/{id}/start."""

    required_permissions = {"POST": (RUN_JOB,)}
    conflict = JobStart.conflict

    def post(self, request: Request, jobName: str) -> Response:
        if not job_name_validator.regex.match(jobName):
            raise NotFound(f"no job named {jobName!r}")
        data = valid(s.StartSerializer, request.data)
        execution = operator.start(
            jobName,
            data["params"],
            user=request.user,
            trigger=Trigger.API,
            idempotency_key=idempotency_key(request),
        )
        return Response(
            {"executionId": execution.pk, "jobName": execution.job.name, "status": execution.status}
        )


@extend_schema(responses={200: s.SeedSchedulerSerializer}, deprecated=True)
class SeedScheduler(ApiMixin, generics.GenericAPIView):
    """Seed-era scheduler status. Prefer GET v1/scheduler (adds workers and all statuses)."""

    required_permissions = {"GET": (VIEW_EXECUTION,)}

    def get(self, request: Request) -> Response:
        status_now = selectors.scheduler_status(ask_workers=False)
        return Response(s.SeedSchedulerSerializer(status_now).data)
