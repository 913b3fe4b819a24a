"""Batch jobs registered by name: @batch_job("name") on a function that builds the Job."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from batchjobs.rules.registry import ParameterSchema, Registry, first_doc_line

from .job import Job


@dataclass(frozen=True)
class RegisteredBatchJob:
    name: str
    build: Callable[[], Job]
    parameters: ParameterSchema
    # The parameters that identify a job instance (None: all of them). A job instance
    # completes at most once.
    identifying: tuple[str, ...] | None
    # Makes the parameters of the next instance from the last one's (start_next_instance).
    incrementer: Callable[[dict[str, Any]], dict[str, Any]] | None
    description: str

    @property
    def parameters_schema(self) -> dict[str, Any]:
        return self.parameters.schema


_REGISTRY: Registry[RegisteredBatchJob] = Registry("batch job")


def batch_job(
    name: str,
    *,
    parameters_schema: dict[str, Any] | None = None,
    identifying: list[str] | tuple[str, ...] | None = None,
    incrementer: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    description: str = "",
) -> Callable[[Callable[[], Job]], Callable[[], Job]]:
    parameters = ParameterSchema.checked(parameters_schema)

    def register(build: Callable[[], Job]) -> Callable[[], Job]:
        entry = RegisteredBatchJob(
            name=name,
            build=build,
            parameters=parameters,
            identifying=tuple(identifying) if identifying is not None else None,
            incrementer=incrementer,
            description=description or first_doc_line(build),
        )
        _REGISTRY.add(name, entry, source=build)
        return build

    return register


def batch_job_get(name: str) -> RegisteredBatchJob | None:
    return _REGISTRY.get(name)


def batch_job_names() -> list[str]:
    return _REGISTRY.names()


def batch_params_errors(name: str, params: Any, *, partial: bool = False) -> list[str]:
    """Ways `params` break the job's schema. `partial`: a job's saved defaults, to which a
    start adds the rest, so required parameters may still be missing."""
    entry = _REGISTRY.get(name)
    if entry is None:
        raise KeyError(name)
    return entry.parameters.errors(params, partial=partial)
