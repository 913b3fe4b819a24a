"""A schedule's account of occurrences: what became of each of its nominal fires."""

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from batchjobs.models import BatchSchedule
from batchjobs.selectors.occurrences import occurrence_account, occurrence_list

from .. import serializers as s
from ..permissions import VIEW_SCHEDULE
from .base import ApiListView, valid


@extend_schema(
    summary="What became of a schedule's fires",
    parameters=[s.OccurrenceQuerySerializer],
    responses={200: s.OccurrenceListSerializer},
)
class ScheduleOccurrences(ApiListView):
    """The schedule's occurrence records, latest first: for each nominal fire (or run of
    consecutive fires with one fate), whether it fired (its execution), was moved by a
    calendar, skipped by the overlap policy, coalesced, skipped or dropped by the misfire
    policy, excluded by a calendar, passed by while paused, not fired for a disabled job or
    max runs, or found its execution already there; with the reason. `since`/`until` bound the
    window, `outcome` (repeatable) filters; `account` counts the window's fires per outcome."""

    queryset = BatchSchedule.objects.all()
    required_permissions = {"GET": (VIEW_SCHEDULE,)}

    def get(self, request: Request, pk: int) -> Response:
        schedule = self.get_object()
        query = valid(s.OccurrenceQuerySerializer, request.query_params)
        window = {"since": query.get("since"), "until": query.get("until")}
        rows = occurrence_list(schedule_id=schedule.pk, outcomes=query.get("outcome", ()), **window)
        page = self.paginate_queryset(rows)
        response = self.get_paginated_response(s.OccurrenceSerializer(page, many=True).data)
        response.data["account"] = occurrence_account(schedule_id=schedule.pk, **window)
        return response
