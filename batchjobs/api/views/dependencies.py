"""Job dependencies: list, add and remove the edges of the job graph (jobs named by id or name);
a job's upstream and downstream graph. Reading needs view_batchjob, a change change_batchjob:
an edge is part of the jobs it joins."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from batchjobs.models import BatchJob
from batchjobs.selectors.dependencies import dependency_list, job_graph
from batchjobs.services.dependencies import dependency_create, dependency_delete

from .. import serializers as s
from ..permissions import CHANGE_JOB, VIEW_JOB
from .base import ApiListView, ApiView, valid


@extend_schema_view(
    get=extend_schema(summary="List job dependencies", parameters=[s.DependencyQuerySerializer]),
    post=extend_schema(summary="Add a job dependency"),
)
class DependencyListCreate(ApiListView, generics.ListCreateAPIView):
    """The edges of the job graph (?job=<id>: those of one job, at either end), or add one:
    when `upstream` ends meeting `condition` (success, failure, always), `downstream` starts.
    A job that does not exist, a job on itself, an edge twice and an edge closing a cycle
    are refused naming the field (a cycle by its jobs: a → b → a)."""

    serializer_class = s.DependencySerializer
    filter_backends = ()
    required_permissions = {"GET": (VIEW_JOB,), "POST": (CHANGE_JOB,)}

    def get_queryset(self):
        query = valid(s.DependencyQuerySerializer, self.request.query_params)
        return dependency_list(job_id=query.get("job"))

    def create(self, request: Request, *args, **kwargs) -> Response:
        data = valid(s.DependencySerializer, request.data)
        edge = dependency_create(user=request.user, **data)
        return Response(s.DependencySerializer(edge).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    get=extend_schema(summary="Read a job dependency"),
    delete=extend_schema(summary="Remove a job dependency"),
)
class DependencyDetail(ApiView, generics.RetrieveDestroyAPIView):
    """Read or remove an edge. The runs it started keep their record."""

    serializer_class = s.DependencySerializer
    required_permissions = {"GET": (VIEW_JOB,), "DELETE": (CHANGE_JOB,)}

    def get_queryset(self):
        return dependency_list()

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        dependency_delete(dependency=self.get_object(), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(
    summary="A job's dependency graph",
    parameters=[s.GraphQuerySerializer],
    responses={200: s.JobGraphSerializer},
)
class JobGraph(ApiView):
    """The jobs upstream of this one and downstream of it, as trees `depth` edges deep."""

    queryset = BatchJob.objects.all()
    required_permissions = {"GET": (VIEW_JOB,)}

    def get(self, request: Request, pk: int) -> Response:
        query = valid(s.GraphQuerySerializer, request.query_params)
        graph = job_graph(job=self.get_object(), depth=query["depth"])
        return Response(s.JobGraphSerializer(graph).data)
