"""Exclusion calendars: list, create, read, change, delete, and the days one excludes in a year.
A schedule names its calendars (schedules' `calendars` and `calendar_policy`)."""

from datetime import date

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from batchjobs.selectors.calendars import calendar_list
from batchjobs.services.calendars import (
    calendar_create,
    calendar_days,
    calendar_delete,
    calendar_update,
)

from .. import serializers as s
from ..permissions import ADD_CALENDAR, CHANGE_CALENDAR, DELETE_CALENDAR, VIEW_CALENDAR
from .base import ApiListView, ApiView, valid


@extend_schema_view(
    get=extend_schema(summary="List exclusion calendars"),
    post=extend_schema(summary="Create an exclusion calendar"),
)
class CalendarListCreate(ApiListView, generics.ListCreateAPIView):
    """List the calendars (with how many schedules use each) or create one. A country's public
    holidays come from the holidays library (python-holidays); an unknown country or a
    subdivision not of the country is refused naming the field."""

    serializer_class = s.CalendarSerializer
    filterset_fields = ("country", "business_days_only")
    ordering_fields = ("name", "id", "updated_at")
    required_permissions = {"GET": (VIEW_CALENDAR,), "POST": (ADD_CALENDAR,)}

    def get_queryset(self):
        return calendar_list()

    def create(self, request: Request, *args, **kwargs) -> Response:
        data = valid(s.CalendarSerializer, request.data)
        calendar = calendar_create(user=request.user, **data)
        return Response(
            s.CalendarSerializer(calendar_list().get(pk=calendar.pk)).data,
            status=status.HTTP_201_CREATED,
        )


@extend_schema_view(
    get=extend_schema(summary="Read an exclusion calendar"),
    put=extend_schema(summary="Change an exclusion calendar"),
    patch=extend_schema(summary="Change some fields of an exclusion calendar"),
    delete=extend_schema(summary="Delete an exclusion calendar"),
)
class CalendarDetail(ApiView, generics.RetrieveUpdateDestroyAPIView):
    """Read, change or delete a calendar; the schedules using it follow at once. PUT needs the
    name and PATCH does not; with both, fields left out keep their values."""

    serializer_class = s.CalendarSerializer
    required_permissions = {
        "GET": (VIEW_CALENDAR,),
        "PUT": (CHANGE_CALENDAR,),
        "PATCH": (CHANGE_CALENDAR,),
        "DELETE": (DELETE_CALENDAR,),
    }

    def get_queryset(self):
        return calendar_list()

    def update(self, request: Request, *args, partial: bool = False, **kwargs) -> Response:
        calendar = self.get_object()
        data = valid(s.CalendarSerializer, request.data, instance=calendar, partial=partial)
        calendar_update(calendar=calendar, user=request.user, **data)
        return Response(s.CalendarSerializer(calendar_list().get(pk=calendar.pk)).data)

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        calendar_delete(calendar=self.get_object(), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(
    parameters=[s.CalendarDaysQuerySerializer], responses={200: s.CalendarDaysSerializer}
)
class CalendarDays(ApiView):
    """The days of a year the calendar excludes, each with why (a holiday's name in the
    request's language where the holidays library has it)."""

    queryset = calendar_list()
    required_permissions = {"GET": (VIEW_CALENDAR,)}

    def get(self, request: Request, pk: int) -> Response:
        calendar = self.get_object()
        year = valid(s.CalendarDaysQuerySerializer, request.query_params)["year"]
        days = calendar_days(calendar=calendar, start=date(year, 1, 1), end=date(year, 12, 31))
        return Response(
            s.CalendarDaysSerializer(
                {
                    "calendar": calendar.pk,
                    "year": year,
                    "days": [{"date": day, "reason": why} for day, why in days],
                }
            ).data
        )
