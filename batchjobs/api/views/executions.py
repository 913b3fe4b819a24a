"""Executions: list and read; stop, restart, abandon (the JobOperator's door); the running
ones of a job; the summaries of an execution and its steps."""

from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from batchjobs.selectors.attempt_log import attempt_log_page
from batchjobs.selectors.executions import execution_get, execution_list
from batchjobs.services import operator

from .. import serializers as s
from ..filters import ExecutionFilter
from ..permissions import RUN_JOB, VIEW_EXECUTION
from .base import ApiListView, ApiView, no_body, valid


class ExecutionList(ApiListView, generics.ListAPIView):
    """Executions, newest first; filter by job, schedule, status, trigger and creation time."""

    serializer_class = s.ExecutionSerializer
    filterset_class = ExecutionFilter
    ordering_fields = ("created_at", "started_at", "finished_at", "id", "status")
    required_permissions = {"GET": (VIEW_EXECUTION,)}

    def get_queryset(self):
        return execution_list()


@extend_schema(responses={200: s.ExecutionDetailSerializer})
class ExecutionDetail(ApiView):
    """One execution with its attempts, steps and execution context."""

    required_permissions = {"GET": (VIEW_EXECUTION,)}

    def get(self, request: Request, pk: int) -> Response:
        execution = execution_get(execution_id=pk)
        return Response(s.ExecutionDetailSerializer(execution).data)


@extend_schema(request=None, responses={200: s.ExecutionSerializer})
class ExecutionStop(ApiView):
    """Stop: a queued execution ends STOPPED at once; a running one turns STOPPING and stops
    at its next chunk boundary (batch) or at once (HTTP and handler jobs)."""

    required_permissions = {"POST": (RUN_JOB,)}
    conflict = gettext_lazy("the execution has already ended.")

    def post(self, request: Request, pk: int) -> Response:
        no_body(request)
        return Response(
            s.ExecutionSerializer(operator.execution_stop(execution_id=pk, user=request.user)).data
        )


@extend_schema(request=None, responses={202: s.ExecutionSerializer})
class ExecutionRestart(ApiView):
    """Restart a FAILED or STOPPED execution: a new execution of the same instance that resumes
    from the saved context; completed steps are not run again."""

    required_permissions = {"POST": (RUN_JOB,)}
    conflict = gettext_lazy(
        "only a FAILED or STOPPED execution, not yet restarted, can be restarted."
    )

    def post(self, request: Request, pk: int) -> Response:
        no_body(request)
        execution = operator.execution_restart(execution_id=pk, user=request.user)
        return Response(s.ExecutionSerializer(execution).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(request=None, responses={200: s.ExecutionSerializer})
class ExecutionAbandon(ApiView):
    """Abandon a STOPPED or FAILED execution: it will never be restarted."""

    required_permissions = {"POST": (RUN_JOB,)}
    conflict = gettext_lazy("only a STOPPED or FAILED execution can be abandoned.")

    def post(self, request: Request, pk: int) -> Response:
        no_body(request)
        return Response(
            s.ExecutionSerializer(
                operator.execution_abandon(execution_id=pk, user=request.user)
            ).data
        )


@extend_schema(parameters=[s.RunningQuerySerializer], responses={200: s.RunningSerializer})
class ExecutionRunning(ApiView):
    """The ids of the job's queued and running executions (the JobOperator's)."""

    required_permissions = {"GET": (VIEW_EXECUTION,)}
    not_found = gettext_lazy("no job has that name.")

    def get(self, request: Request) -> Response:
        name = valid(s.RunningQuerySerializer, request.query_params)["job"]
        return Response(
            {"job": name, "execution_ids": operator.job_running_executions(job_name=name)}
        )


@extend_schema(responses={200: s.ExecutionSummarySerializer})
class ExecutionSummary(ApiView):
    """The JobOperator's summary of the execution."""

    required_permissions = {"GET": (VIEW_EXECUTION,)}

    def get(self, request: Request, pk: int) -> Response:
        return Response(
            s.ExecutionSummarySerializer(operator.execution_summary(execution_id=pk)).data
        )


@extend_schema(responses={200: s.StepSummarySerializer(many=True)})
class ExecutionStepSummaries(ApiView):
    """The JobOperator's summaries of the execution's steps (and partitions)."""

    required_permissions = {"GET": (VIEW_EXECUTION,)}

    def get(self, request: Request, pk: int) -> Response:
        return Response(
            s.StepSummarySerializer(
                operator.execution_step_summaries(execution_id=pk), many=True
            ).data
        )


@extend_schema(parameters=[s.AttemptLogQuerySerializer], responses={200: s.AttemptLogSerializer})
class ExecutionAttemptLog(ApiView):
    """An attempt's log lines after `after` (0: from the first), for following it while it
    runs: ask again with `after=next_after` while `running` is true."""

    required_permissions = {"GET": (VIEW_EXECUTION,)}

    def get(self, request: Request, pk: int, number: int) -> Response:
        query = valid(s.AttemptLogQuerySerializer, request.query_params)
        page = attempt_log_page(
            execution_id=pk, attempt_number=number, after_number=query["after"],
            limit=query["limit"],
        )  # fmt: skip
        return Response(s.AttemptLogSerializer(page).data)
