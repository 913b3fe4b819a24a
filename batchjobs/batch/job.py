"""Job definitions: steps, deciders and the flow between them."""

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .policies import RetryPolicy, SkipPolicy

END, FAIL, STOP = "END", "FAIL", "STOP"


class RepeatStatus(Enum):
    CONTINUABLE = "CONTINUABLE"
    FINISHED = "FINISHED"


@dataclass
class StepContext:
    """What a step's code can see: the job's parameters, the step's saved context, the
    partition's own context (partitioned steps), and an exit status it may set."""

    params: dict[str, Any]
    job_context: dict[str, Any]
    context: dict[str, Any]
    step_name: str
    execution_id: int
    partition: dict[str, Any] = field(default_factory=dict)
    exit_status: str | None = None


Factory = Callable[[StepContext], Any]


@dataclass(frozen=True)
class TaskletStep:
    """Calls `tasklet(step_context)` until it returns RepeatStatus.FINISHED (or None)."""

    name: str
    tasklet: Callable[[StepContext], RepeatStatus | None]
    listeners: tuple = ()
    allow_start_if_complete: bool = False


@dataclass(frozen=True)
class ChunkStep:
    """Reads items, processes them, writes them `chunk_size` at a time, one transaction per
    chunk. `reader` and `writer` are factories called with the StepContext (late binding: they
    may read job parameters); each processor is an ItemProcessor or a function of the item,
    applied in order."""

    name: str
    reader: Factory
    writer: Factory
    processors: tuple[Any, ...] = ()
    chunk_size: int = 100
    skip: SkipPolicy = SkipPolicy()
    retry: RetryPolicy = RetryPolicy()
    listeners: tuple = ()
    allow_start_if_complete: bool = False
    # Read and process the next chunk while the database takes in this one's rows, if the
    # writer can hold a chunk open (PostgresCopyWriter's stream): each chunk still commits on
    # its own with its checkpoint. Only for readers, processors and listeners that do not use
    # the writer's connection meanwhile (files, HTTP, another database). Listeners then see
    # the next chunk's before_chunk and reads before this chunk's after_write and after_chunk.
    overlap_writes: bool = False


@dataclass(frozen=True)
class PartitionStep:
    """Splits its input with `partitioner(step_context, grid_size) -> {name: context}` and runs
    `step` once per partition, in parallel on any workers; done when all partitions are."""

    name: str
    partitioner: Callable[[StepContext, int], dict[str, dict]]
    step: ChunkStep | TaskletStep
    grid_size: int = 4
    listeners: tuple = ()
    allow_start_if_complete: bool = False


@dataclass(frozen=True)
class Decider:
    """A flow node that picks the next transition: decide(job_context, last_exit_status)."""

    name: str
    decide: Callable[[dict, str | None], str]


Step = TaskletStep | ChunkStep | PartitionStep
Node = Step | Decider


def tasklet_step(name: str, tasklet, **options) -> TaskletStep:
    return TaskletStep(name=name, tasklet=tasklet, **options)


def chunk_step(name: str, *, reader, writer, processor=None, chunk_size: int = 100,
               **options) -> ChunkStep:  # fmt: skip
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    processors: tuple[Any, ...]
    if processor is None:
        processors = ()
    elif isinstance(processor, list | tuple):
        processors = tuple(processor)
    else:
        processors = (processor,)
    return ChunkStep(name=name, reader=reader, writer=writer, processors=processors,
                     chunk_size=chunk_size, **options)  # fmt: skip


def partition_step(name: str, *, partitioner, step, grid_size: int = 4, **options):
    return PartitionStep(name=name, partitioner=partitioner, step=step, grid_size=grid_size,
                         **options)  # fmt: skip


def decider(name: str, decide) -> Decider:
    return Decider(name=name, decide=decide)


def _specificity(pattern: str) -> tuple[int, int]:
    """Spring's order: exact patterns before '?' before '*', longer before shorter."""
    wildcard = 2 if "*" in pattern else 1 if "?" in pattern else 0
    return wildcard, -len(pattern)


@dataclass
class Job:
    """A flow of nodes: `transitions[node] = [(exit status pattern, target)]`, targets being a
    node name or END / FAIL / STOP."""

    start: str
    nodes: dict[str, Node]
    transitions: dict[str, list[tuple[str, str]]]
    listeners: tuple = ()

    def next_target(self, node: str, exit_status: str) -> str:
        rules = sorted(self.transitions.get(node, []), key=lambda rule: _specificity(rule[0]))
        for pattern, target in rules:
            if fnmatch.fnmatchcase(exit_status, pattern):
                return target
        # No rule matched: a failed or stopped node ends the job so, anything else completes.
        return {"FAILED": FAIL, "STOPPED": STOP}.get(exit_status, END)

    @property
    def steps(self) -> list[Step]:
        return [node for node in self.nodes.values() if not isinstance(node, Decider)]


class JobBuilder:
    """Fluent flow definition, after Spring Batch's JobBuilder::

    JobBuilder().start(load).next(report).build()                    # sequential
    (JobBuilder().start(load)
        .on("FAILED").to(cleanup)
        .from_(load).on("*").to(report)
        .from_(cleanup).on("*").fail()
        .build())
    """

    def __init__(self, *, listeners: Iterable = ()) -> None:
        self._nodes: dict[str, Node] = {}
        self._transitions: dict[str, list[tuple[str, str]]] = {}
        self._start: str | None = None
        self._current: str | None = None
        self._listeners = tuple(listeners)

    def _add(self, node: Node) -> str:
        existing = self._nodes.get(node.name)
        if existing is not None and existing is not node:
            raise ValueError(f"two different nodes are named {node.name!r}")
        self._nodes[node.name] = node
        return node.name

    def start(self, node: Node) -> "JobBuilder":
        self._start = self._current = self._add(node)
        return self

    def next(self, node: Node) -> "JobBuilder":
        """Go on to `node` unless the current one failed or stopped."""
        target = self._add(node)
        self._transitions.setdefault(self._require_current(), []).extend(
            [("FAILED", FAIL), ("STOPPED", STOP), ("*", target)]
        )
        self._current = target
        return self

    def from_(self, node: Node) -> "JobBuilder":
        self._current = self._add(node)
        return self

    def on(self, pattern: str) -> "_TransitionBuilder":
        return _TransitionBuilder(self, self._require_current(), pattern)

    def _require_current(self) -> str:
        if self._current is None:
            raise ValueError("call start() first")
        return self._current

    def build(self) -> Job:
        if self._start is None:
            raise ValueError("a job needs a start node")
        for source, rules in self._transitions.items():
            for _, target in rules:
                if target not in (END, FAIL, STOP) and target not in self._nodes:
                    raise ValueError(f"{source} goes to unknown node {target!r}")
        return Job(start=self._start, nodes=dict(self._nodes),
                   transitions={k: list(v) for k, v in self._transitions.items()},
                   listeners=self._listeners)  # fmt: skip


class _TransitionBuilder:
    def __init__(self, builder: JobBuilder, source: str, pattern: str) -> None:
        self._builder, self._source, self._pattern = builder, source, pattern

    def _to(self, target: str) -> JobBuilder:
        self._builder._transitions.setdefault(self._source, []).append((self._pattern, target))
        return self._builder

    def to(self, node: Node) -> JobBuilder:
        return self._to(self._builder._add(node))

    def end(self) -> JobBuilder:
        return self._to(END)

    def fail(self) -> JobBuilder:
        return self._to(FAIL)

    def stop(self) -> JobBuilder:
        return self._to(STOP)
