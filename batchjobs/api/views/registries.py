"""What can be run: the registered handlers and batch jobs, with their parameter schemas."""

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from batchjobs.batch.registry import batch_job_get, batch_job_names
from batchjobs.handlers.registry import handlers_all

from .. import serializers as s
from ..permissions import VIEW_JOB
from .base import ApiView


@extend_schema(responses={200: s.HandlerSerializer(many=True)})
class HandlerList(ApiView):
    """The registered handlers with their parameter schemas."""

    required_permissions = {"GET": (VIEW_JOB,)}

    def get(self, request: Request) -> Response:
        return Response(s.HandlerSerializer(handlers_all(), many=True).data)


@extend_schema(responses={200: s.BatchJobDefinitionSerializer(many=True)})
class BatchJobList(ApiView):
    """The registered batch jobs with their parameter schemas."""

    required_permissions = {"GET": (VIEW_JOB,)}

    def get(self, request: Request) -> Response:
        registered = [batch_job_get(name) for name in batch_job_names()]
        return Response(s.BatchJobDefinitionSerializer(registered, many=True).data)
