"""Jobs: list, create, read, change, delete; start (now, or the next batch instance), enable,
disable, and test-fire an HTTP job once."""

from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from batchjobs.models import BatchJob, Trigger
from batchjobs.selectors.jobs import job_get, job_list
from batchjobs.services import operator
from batchjobs.services.jobs import (
    job_create,
    job_delete,
    job_set_enabled,
    job_test_fire,
    job_update,
)

from .. import serializers as s
from ..filters import JobFilter
from ..permissions import ADD_JOB, CHANGE_JOB, DELETE_JOB, RUN_JOB, VIEW_JOB
from .base import IDEMPOTENCY_PARAMETER, ApiListView, ApiView, idempotency_key, no_body, valid


@extend_schema_view(
    get=extend_schema(summary="List jobs"), post=extend_schema(summary="Create a job")
)
class JobListCreate(ApiListView, generics.ListCreateAPIView):
    """List jobs (with their latest execution and schedule count) or create one."""

    serializer_class = s.JobSerializer
    filterset_class = JobFilter
    ordering_fields = ("name", "created_at", "updated_at", "id")
    required_permissions = {"GET": (VIEW_JOB,), "POST": (ADD_JOB,)}

    def get_queryset(self):
        return job_list()

    def create(self, request: Request, *args, **kwargs) -> Response:
        data = valid(s.JobSerializer, request.data)
        job = job_create(user=request.user, **data)
        return Response(
            s.JobSerializer(job_get(job_id=job.pk)).data, status=status.HTTP_201_CREATED
        )


@extend_schema_view(
    get=extend_schema(summary="Read a job"),
    put=extend_schema(summary="Change a job"),
    patch=extend_schema(summary="Change some fields of a job"),
    delete=extend_schema(summary="Delete a job, its schedules and executions"),
)
class JobDetail(ApiView, generics.RetrieveUpdateDestroyAPIView):
    """Read, change or delete a job. PUT needs name and kind and PATCH does not; with both,
    fields left out keep their values. Secret header values sent as •••••• keep theirs."""

    serializer_class = s.JobSerializer
    required_permissions = {
        "GET": (VIEW_JOB,),
        "PUT": (CHANGE_JOB,),
        "PATCH": (CHANGE_JOB,),
        "DELETE": (DELETE_JOB,),
    }
    conflict = gettext_lazy("a job with queued or running executions cannot be deleted.")

    def get_queryset(self):
        return job_list()

    def update(self, request: Request, *args, partial: bool = False, **kwargs) -> Response:
        job = self.get_object()
        data = valid(s.JobSerializer, request.data, instance=job, partial=partial)
        job_update(job=job, user=request.user, **data)
        return Response(s.JobSerializer(job_get(job_id=job.pk)).data)

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        job = self.get_object()
        job_delete(job=job, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(
    request=s.StartSerializer,
    parameters=[IDEMPOTENCY_PARAMETER],
    responses={202: s.ExecutionSerializer},
)
class JobStart(ApiView):
    """Run the job now with these parameters. A batch job starts a new job instance."""

    queryset = BatchJob.objects.all()
    required_permissions = {"POST": (RUN_JOB,)}
    conflict = gettext_lazy(
        "the job is disabled, or (batch) this job instance completed, runs, or failed."
    )

    def post(self, request: Request, pk: int) -> Response:
        job = self.get_object()
        data = valid(s.StartSerializer, request.data)
        execution = operator.job_start(
            job_name=job.name,
            params=data["params"],
            user=request.user,
            trigger=Trigger.API,
            idempotency_key=idempotency_key(request),
            logical_time=data["logical_time"],
        )
        return Response(s.ExecutionSerializer(execution).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(request=None, responses={202: s.ExecutionSerializer})
class JobStartNextInstance(ApiView):
    """Batch jobs: start the instance after the last, with the parameters its incrementer makes."""

    queryset = BatchJob.objects.all()
    required_permissions = {"POST": (RUN_JOB,)}
    conflict = gettext_lazy(
        "the job has no parameter incrementer, is disabled, or the instance exists."
    )

    def post(self, request: Request, pk: int) -> Response:
        no_body(request)
        execution = operator.job_start_next_instance(
            job_name=self.get_object().name, user=request.user
        )
        return Response(s.ExecutionSerializer(execution).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(request=None, responses={200: s.JobSerializer})
class JobEnable(ApiView):
    """Enable the job: its schedules fire again and it can be started."""

    queryset = BatchJob.objects.all()
    required_permissions = {"POST": (CHANGE_JOB,)}
    enabled = True

    def post(self, request: Request, pk: int) -> Response:
        no_body(request)
        job = job_set_enabled(job=self.get_object(), enabled=self.enabled, user=request.user)
        return Response(s.JobSerializer(job_get(job_id=job.pk)).data)


class JobDisable(JobEnable):
    """Disable the job: its schedules move on without firing and it cannot be started."""

    enabled = False


@extend_schema(request=None, responses={200: s.TestFireSerializer})
class JobTestFire(ApiView):
    """HTTP jobs: send the job's request once, now, and show the request and the response.
    Nothing is recorded or scheduled. The call goes through the same hardened client as a run
    (destination checks, size cap), bounded by the job's timeout and at most 30 seconds."""

    queryset = BatchJob.objects.all()
    required_permissions = {"POST": (RUN_JOB,)}
    conflict = gettext_lazy("the job is not an HTTP job.")

    def post(self, request: Request, pk: int) -> Response:
        no_body(request)
        return Response(job_test_fire(job=self.get_object()))
