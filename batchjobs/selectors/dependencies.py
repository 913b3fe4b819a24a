"""Job dependencies as read: the edges, a job's upstream and downstream graph to a bounded depth,
the path that would close a cycle, and per execution what triggered it and what it triggered."""

from collections import deque
from dataclasses import dataclass, field

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from batchjobs.errors import NotFound
from batchjobs.models import BatchJob, BatchLog, JobDependency

# How far a graph is followed by default, and at most: a job graph deeper than this is shown
# cut, with `truncated` set, rather than read whole on every page view.
GRAPH_DEFAULT_DEPTH = 5
GRAPH_MAX_DEPTH = 20


def dependency_list(*, job_id: int | None = None) -> QuerySet[JobDependency]:
    """Every edge, or those of one job (as upstream or downstream), by names."""
    edges = JobDependency.objects.select_related("upstream", "downstream")
    if job_id is not None:
        edges = edges.filter(upstream_id=job_id) | edges.filter(downstream_id=job_id)
    return edges.order_by("upstream__name", "downstream__name")


def dependency_between(*, upstream: BatchJob, downstream: BatchJob) -> JobDependency:
    """The edge upstream -> downstream; NotFound naming both jobs if there is none."""
    edge = dependency_list().filter(upstream=upstream, downstream=downstream).first()
    if edge is None:
        raise NotFound(
            _("%(upstream)s does not start %(downstream)s")
            % {"upstream": upstream.name, "downstream": downstream.name}
        )
    return edge


def dependency_path(*, start_id: int, goal_id: int) -> list[int] | None:
    """The shortest chain of downstream edges from job `start_id` to job `goal_id` (their ids,
    both ends included), or None. An edge goal -> start would close it into a cycle."""
    previous: dict[int, int | None] = {start_id: None}
    frontier = deque([start_id])
    while frontier:
        current = frontier.popleft()
        if current == goal_id:
            path = [current]
            while (before := previous[path[-1]]) is not None:
                path.append(before)
            return path[::-1]
        for downstream_id in JobDependency.objects.filter(upstream_id=current).values_list(
            "downstream_id", flat=True
        ):
            if downstream_id not in previous:
                previous[downstream_id] = current
                frontier.append(downstream_id)
    return None


def job_names(ids: list[int]) -> list[str]:
    """The jobs' names, in the order of `ids`."""
    names = dict(BatchJob.objects.filter(pk__in=ids).values_list("pk", "name"))
    return [names[pk] for pk in ids]


@dataclass
class GraphNode:
    """A job in a dependency graph: the edge that reaches it and the jobs beyond."""

    job_id: int
    name: str
    enabled: bool
    upstream_mode: str
    condition: str  # of the edge from (or to) its parent; "" for the root
    dependency_id: int | None
    children: list["GraphNode"] = field(default_factory=list)
    truncated: bool = False  # it has more beyond the depth read
    repeated: bool = False  # reached already on another branch: its children are shown there


@dataclass
class JobGraph:
    job: GraphNode
    upstream: list[GraphNode]
    downstream: list[GraphNode]
    depth: int


def job_graph(*, job: BatchJob, depth: int = GRAPH_DEFAULT_DEPTH) -> JobGraph:
    """The jobs upstream of `job` and downstream of it, each side a tree `depth` edges deep at
    most (one query per level and side)."""
    depth = max(1, min(depth, GRAPH_MAX_DEPTH))
    root = _node(job, condition="", dependency_id=None)
    return JobGraph(
        job=root,
        upstream=_side(job.pk, upstream=True, depth=depth),
        downstream=_side(job.pk, upstream=False, depth=depth),
        depth=depth,
    )


def _node(job: BatchJob, *, condition: str, dependency_id: int | None) -> GraphNode:
    return GraphNode(
        job_id=job.pk, name=job.name, enabled=job.enabled, upstream_mode=job.upstream_mode,
        condition=condition, dependency_id=dependency_id,
    )  # fmt: skip


def _side(root_id: int, *, upstream: bool, depth: int) -> list[GraphNode]:
    """One side of the graph, breadth first: each level's edges in one query. A job met again
    (a diamond) is shown `repeated`, its own jobs under its first appearance."""
    near, far = ("downstream_id", "upstream") if upstream else ("upstream_id", "downstream")
    top: list[GraphNode] = []
    # job id -> the node whose jobs the next level reads (None: the root).
    expanding: dict[int, GraphNode | None] = {root_id: None}
    seen = {root_id}
    for level in range(depth + 1):
        if not expanding:
            break
        edges = (
            JobDependency.objects.filter(**{f"{near}__in": list(expanding)})
            .select_related(far)
            .order_by(f"{far}__name")
        )
        if level == depth:  # read only to mark the nodes that go further
            for edge in edges:
                if (cut := expanding[getattr(edge, near)]) is not None:
                    cut.truncated = True
            break
        following: dict[int, GraphNode | None] = {}
        for edge in edges:
            parent = expanding[getattr(edge, near)]
            job = getattr(edge, far)
            node = _node(job, condition=edge.condition, dependency_id=edge.pk)
            (top if parent is None else parent.children).append(node)
            if job.pk in seen:
                node.repeated = True
            else:
                seen.add(job.pk)
                following[job.pk] = node
        expanding = following
    return top


def execution_triggered(*, execution: BatchLog) -> QuerySet[BatchLog]:
    """The runs an execution's end started (dependencies), oldest first."""
    return (
        BatchLog.objects.filter(triggered_by_id=execution.pk)
        .select_related("job", "dependency")
        .order_by("pk")
    )
