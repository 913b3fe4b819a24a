"""Schedules: list, create, read, change, delete; pause, resume, and preview the next fires."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from batchjobs.models import BatchSchedule
from batchjobs.selectors.schedules import schedule_list
from batchjobs.services.schedules import (
    schedule_create,
    schedule_delete,
    schedule_pause,
    schedule_preview,
    schedule_resume,
    schedule_update,
)

from .. import serializers as s
from ..filters import ScheduleFilter
from ..permissions import ADD_SCHEDULE, CHANGE_SCHEDULE, DELETE_SCHEDULE, VIEW_SCHEDULE
from .base import ApiListView, ApiView, no_body, valid


@extend_schema_view(
    get=extend_schema(summary="List schedules"), post=extend_schema(summary="Create a schedule")
)
class ScheduleListCreate(ApiListView, generics.ListCreateAPIView):
    """List schedules or create one (`delay_seconds`: a once-schedule that fires that soon)."""

    serializer_class = s.ScheduleSerializer
    filterset_class = ScheduleFilter
    ordering_fields = ("next_fire_at", "created_at", "id")
    required_permissions = {"GET": (VIEW_SCHEDULE,), "POST": (ADD_SCHEDULE,)}

    def get_queryset(self):
        return schedule_list()

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
class ScheduleDetail(ApiView, generics.RetrieveUpdateDestroyAPIView):
    """Read, change or delete a schedule. A change of timing recomputes the next fire."""

    serializer_class = s.ScheduleSerializer
    required_permissions = {
        "GET": (VIEW_SCHEDULE,),
        "PUT": (CHANGE_SCHEDULE,),
        "PATCH": (CHANGE_SCHEDULE,),
        "DELETE": (DELETE_SCHEDULE,),
    }

    def get_queryset(self):
        return schedule_list()

    def update(self, request: Request, *args, partial: bool = False, **kwargs) -> Response:
        schedule = self.get_object()
        data = valid(s.ScheduleSerializer, request.data, instance=schedule, partial=partial)
        schedule = schedule_update(schedule=schedule, user=request.user, **data)
        return Response(s.ScheduleSerializer(schedule).data)

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        schedule_delete(schedule=self.get_object(), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(request=None, responses={200: s.ScheduleSerializer})
class SchedulePause(ApiView):
    """Pause the schedule: it does not fire until resumed."""

    queryset = BatchSchedule.objects.select_related("job")
    required_permissions = {"POST": (CHANGE_SCHEDULE,)}
    service = staticmethod(schedule_pause)

    def post(self, request: Request, pk: int) -> Response:
        no_body(request)
        schedule = self.service(schedule=self.get_object(), user=request.user)
        return Response(s.ScheduleSerializer(schedule).data)


class ScheduleResume(SchedulePause):
    """Resume the schedule from now; the fires it passed by while paused are recorded
    `paused` in its occurrences, not run."""

    service = staticmethod(schedule_resume)


@extend_schema(parameters=[s.PreviewQuerySerializer], responses={200: s.PreviewSerializer})
class SchedulePreview(ApiView):
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
