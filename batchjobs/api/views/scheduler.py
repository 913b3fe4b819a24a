"""The scheduler's status: beat, workers, executions by status, the next fire."""

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from batchjobs.selectors.scheduler import scheduler_status

from .. import serializers as s
from ..permissions import VIEW_EXECUTION
from .base import ApiView


@extend_schema(responses={200: s.SchedulerStatusSerializer})
class SchedulerStatus(ApiView):
    """Whether beat is alive, the workers that answer, executions by status, the next fire."""

    required_permissions = {"GET": (VIEW_EXECUTION,)}

    def get(self, request: Request) -> Response:
        return Response(s.SchedulerStatusSerializer(scheduler_status()).data)
