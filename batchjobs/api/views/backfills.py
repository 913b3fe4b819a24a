"""Backfills: create (or dry-run), list, read; pause, resume and cancel."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from batchjobs.selectors.backfills import backfill_get, backfill_list
from batchjobs.services.backfills import (
    DryRun,
    backfill_cancel,
    backfill_create,
    backfill_pause,
    backfill_resume,
)

from .. import serializers as s
from ..permissions import RUN_JOB
from .base import ApiListView, ApiView, no_body, valid

VIEW_BACKFILL = "batchjobs.view_backfill"
ADD_BACKFILL = "batchjobs.add_backfill"
CHANGE_BACKFILL = "batchjobs.change_backfill"


@extend_schema_view(
    get=extend_schema(summary="List backfills"),
    post=extend_schema(
        summary="Create a backfill, or list its fire times (dry_run)",
        request=s.BackfillCreateSerializer,
        responses={201: s.BackfillSerializer, 200: s.BackfillDryRunSerializer},
    ),
)
class BackfillListCreate(ApiListView, generics.ListAPIView):
    """Run a schedule's nominal fires over a past range, each at most once (a fire that
    already has an execution is counted and left), at most `max_concurrency` at a time.
    `dry_run` answers the fire times and saves nothing."""

    serializer_class = s.BackfillSerializer
    filterset_fields = ("status", "schedule")
    ordering_fields = ("created_at", "id")
    # Creating one starts runs of the schedule's job.
    required_permissions = {"GET": (VIEW_BACKFILL,), "POST": (ADD_BACKFILL, RUN_JOB)}

    def get_queryset(self):
        return backfill_list()

    def post(self, request: Request) -> Response:
        data = valid(s.BackfillCreateSerializer, request.data)
        result = backfill_create(user=request.user, **data)
        if isinstance(result, DryRun):
            return Response(s.BackfillDryRunSerializer(result).data)
        backfill = backfill_get(backfill_id=result.pk)
        return Response(s.BackfillSerializer(backfill).data, status=status.HTTP_201_CREATED)


@extend_schema(summary="Read a backfill and its progress")
class BackfillDetail(ApiView, generics.RetrieveAPIView):
    serializer_class = s.BackfillSerializer
    required_permissions = {"GET": (VIEW_BACKFILL,)}

    def get_queryset(self):
        return backfill_list()


@extend_schema(request=None, responses={200: s.BackfillSerializer})
class BackfillPause(ApiView):
    """Create no more runs until resumed; the runs created go on."""

    required_permissions = {"POST": (CHANGE_BACKFILL,)}
    service = staticmethod(backfill_pause)

    def post(self, request: Request, pk: int) -> Response:
        no_body(request)
        self.service(backfill_id=pk, user=request.user)
        return Response(s.BackfillSerializer(backfill_get(backfill_id=pk)).data)


class BackfillResume(BackfillPause):
    """Go on from where it paused, up to its cap at once."""

    service = staticmethod(backfill_resume)


class BackfillCancel(BackfillPause):
    """Create no more runs, for good; its runs still queued are stopped, started ones finish."""

    service = staticmethod(backfill_cancel)
