"""`manage.py dependencies <subcommand>`: the job graph from a shell or a script.

    list [--job JOB]                          the edges (of one job, at either end)
    add UPSTREAM DOWNSTREAM [--condition success|failure|always]
    remove UPSTREAM DOWNSTREAM                the edge between the two jobs
    graph JOB [--depth N]                     the job's upstream and downstream jobs

Jobs are named by name or id. Every subcommand takes --json: one JSON document on stdout (the
API's representation), and on failure {"error": ..., "fields": {...}}. Exit codes: 0 done,
2 bad input (an unknown job, a job on itself, an edge twice, a cycle: named in the message).
"""

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext

from batchjobs.errors import BatchJobsError, InvalidInput
from batchjobs.models import DependencyCondition, JobDependency
from batchjobs.selectors.dependencies import (
    GRAPH_DEFAULT_DEPTH,
    GRAPH_MAX_DEPTH,
    GraphNode,
    dependency_between,
    dependency_list,
    job_graph,
)
from batchjobs.services.dependencies import dependency_create, dependency_delete, job_ref

EXIT_OK, EXIT_BAD_INPUT = 0, 2


def job_argument(text: str) -> int | str:
    """A job on the command line: digits are an id, anything else a name."""
    return int(text) if text.isdigit() else text


def edge_json(edge: JobDependency) -> dict[str, Any]:
    return {
        "id": edge.pk,
        "upstream": edge.upstream_id,
        "upstream_name": edge.upstream.name,
        "downstream": edge.downstream_id,
        "downstream_name": edge.downstream.name,
        "condition": edge.condition,
    }


def node_json(node: GraphNode) -> dict[str, Any]:
    return {
        "job": node.job_id, "name": node.name, "enabled": node.enabled,
        "upstream_mode": node.upstream_mode, "condition": node.condition,
        "dependency": node.dependency_id, "truncated": node.truncated, "repeated": node.repeated,
        "children": [node_json(child) for child in node.children],
    }  # fmt: skip


class Command(BaseCommand):
    help = "Job dependencies: list, add and remove edges of the job graph; show a job's graph."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)

        def command(name: str, help_text: str) -> CommandParser:
            child = sub.add_parser(name, help=help_text)
            child.add_argument("--json", action="store_true", dest="as_json")
            return child

        listing = command("list", "the edges of the job graph")
        listing.add_argument("--job", type=job_argument, help="only this job's edges")
        add = command("add", "start DOWNSTREAM when UPSTREAM ends meeting the condition")
        add.add_argument("upstream", type=job_argument)
        add.add_argument("downstream", type=job_argument)
        add.add_argument(
            "--condition", choices=DependencyCondition.values, default=DependencyCondition.SUCCESS
        )
        remove = command("remove", "remove the edge UPSTREAM -> DOWNSTREAM")
        remove.add_argument("upstream", type=job_argument)
        remove.add_argument("downstream", type=job_argument)
        graph = command("graph", "a job's upstream and downstream jobs")
        graph.add_argument("job", type=job_argument)
        graph.add_argument(
            "--depth", type=int, default=GRAPH_DEFAULT_DEPTH, help=f"1 to {GRAPH_MAX_DEPTH}"
        )

    def handle(self, *args, **options) -> None:
        try:
            getattr(self, f"_{options['subcommand']}")(**options)
        except InvalidInput as exc:
            self._fail(options, str(exc), exc.field_errors)
        except BatchJobsError as exc:
            self._fail(options, str(exc), {})

    def _fail(self, options, message: str, fields: dict) -> None:
        if options.get("as_json"):
            self.stdout.write(json.dumps({"error": message, "fields": fields}))
            sys.exit(EXIT_BAD_INPUT)
        raise CommandError(message, returncode=EXIT_BAD_INPUT)

    def _print(self, data: Any) -> None:
        self.stdout.write(json.dumps(data, ensure_ascii=False))

    def _list(self, *, job, as_json: bool, **_) -> None:
        job_id = job_ref(job, field="--job").pk if job is not None else None
        edges = list(dependency_list(job_id=job_id))
        if as_json:
            self._print([edge_json(edge) for edge in edges])
            return
        for edge in edges:
            self.stdout.write(
                f"{edge.upstream.name} → {edge.downstream.name}\t{edge.condition}\t#{edge.pk}"
            )

    def _add(self, *, upstream, downstream, condition: str, as_json: bool, **_) -> None:
        edge = dependency_create(upstream=upstream, downstream=downstream, condition=condition)
        if as_json:
            self._print(edge_json(edge))
        else:
            self.stdout.write(f"{edge.upstream.name} → {edge.downstream.name}\t{edge.condition}")

    def _remove(self, *, upstream, downstream, as_json: bool, **_) -> None:
        edge = dependency_between(
            upstream=job_ref(upstream, field="upstream"),
            downstream=job_ref(downstream, field="downstream"),
        )
        shown = edge_json(edge)
        dependency_delete(dependency=edge)
        if as_json:
            self._print(shown)
        else:
            self.stdout.write(f"removed {shown['upstream_name']} → {shown['downstream_name']}")

    def _graph(self, *, job, depth: int, as_json: bool, **_) -> None:
        if not 1 <= depth <= GRAPH_MAX_DEPTH:
            raise InvalidInput(
                {"--depth": gettext("Between 1 and %(max)s.") % {"max": GRAPH_MAX_DEPTH}}
            )
        graph = job_graph(job=job_ref(job, field="job"), depth=depth)
        if as_json:
            self._print({
                "job": node_json(graph.job),
                "upstream": [node_json(node) for node in graph.upstream],
                "downstream": [node_json(node) for node in graph.downstream],
                "depth": graph.depth,
            })  # fmt: skip
            return
        self._tree(graph.upstream, arrow="←", indent=0)
        self.stdout.write(graph.job.name)
        self._tree(graph.downstream, arrow="→", indent=0)

    def _tree(self, nodes: list[GraphNode], *, arrow: str, indent: int) -> None:
        for node in nodes:
            marks = "".join(
                f" [{mark}]"
                for mark, on in (("more", node.truncated), ("shown above", node.repeated))
                if on
            )
            self.stdout.write(f"{'  ' * indent}{arrow} {node.name} ({node.condition}){marks}")
            self._tree(node.children, arrow=arrow, indent=indent + 1)
