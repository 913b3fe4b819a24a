"""Run limits: list, create, read, change, delete. A limit holds executions of a queue or of
the jobs calling a target host QUEUED while it is full; a change wakes them at once."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from batchjobs.selectors.limits import limit_get, limit_list
from batchjobs.services.limits import limit_create, limit_delete, limit_update

from .. import serializers as s
from ..permissions import ADD_LIMIT, CHANGE_LIMIT, DELETE_LIMIT, VIEW_LIMIT
from .base import ApiListView, ApiView, valid


@extend_schema_view(
    get=extend_schema(summary="List run limits"), post=extend_schema(summary="Create a run limit")
)
class LimitListCreate(ApiListView, generics.ListCreateAPIView):
    """List the limits (with how many executions each holds waiting and how many of its runs
    run now) or create one. A host is saved as job URLs name it (lower case)."""

    serializer_class = s.LimitSerializer
    filterset_fields = ("scope",)
    ordering_fields = ("scope", "name", "id", "updated_at")
    required_permissions = {"GET": (VIEW_LIMIT,), "POST": (ADD_LIMIT,)}

    def get_queryset(self):
        return limit_list()

    def create(self, request: Request, *args, **kwargs) -> Response:
        data = valid(s.LimitSerializer, request.data)
        limit = limit_create(user=request.user, **data)
        return Response(
            s.LimitSerializer(limit_get(limit_id=limit.pk)).data, status=status.HTTP_201_CREATED
        )


@extend_schema_view(
    get=extend_schema(summary="Read a run limit"),
    put=extend_schema(summary="Change a run limit"),
    patch=extend_schema(summary="Change some fields of a run limit"),
    delete=extend_schema(summary="Delete a run limit, sending on what it held"),
)
class LimitDetail(ApiView, generics.RetrieveUpdateDestroyAPIView):
    """Read, change or delete a limit. PUT needs scope and name and PATCH does not; with both,
    fields left out keep their values (send null to clear a number)."""

    serializer_class = s.LimitSerializer
    required_permissions = {
        "GET": (VIEW_LIMIT,),
        "PUT": (CHANGE_LIMIT,),
        "PATCH": (CHANGE_LIMIT,),
        "DELETE": (DELETE_LIMIT,),
    }

    def get_queryset(self):
        return limit_list()

    def update(self, request: Request, *args, partial: bool = False, **kwargs) -> Response:
        limit = self.get_object()
        data = valid(s.LimitSerializer, request.data, instance=limit, partial=partial)
        limit_update(limit=limit, user=request.user, **data)
        return Response(s.LimitSerializer(limit_get(limit_id=limit.pk)).data)

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        limit_delete(limit=self.get_object(), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
