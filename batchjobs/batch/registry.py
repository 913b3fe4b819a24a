"""Batch jobs registered by name: @batch_job("name") on a function that builds the Job."""

from collections.abc import Callable
from dataclasses import dataclass

import jsonschema

from .job import Job


@dataclass(frozen=True)
class RegisteredBatchJob:
    name: str
    build: Callable[[], Job]
    parameters_schema: dict
    # The parameters that identify a job instance (None: all of them). A job instance
    # completes at most once.
    identifying: tuple[str, ...] | None
    # Makes the parameters of the next instance from the last one's (start_next_instance).
    incrementer: Callable[[dict], dict] | None
    description: str


_REGISTRY: dict[str, RegisteredBatchJob] = {}


def batch_job(
    name: str,
    *,
    parameters_schema: dict | None = None,
    identifying: list[str] | tuple[str, ...] | None = None,
    incrementer: Callable[[dict], dict] | None = None,
    description: str = "",
):
    schema = parameters_schema or {"type": "object"}
    jsonschema.Draft202012Validator.check_schema(schema)

    def register(build: Callable[[], Job]) -> Callable[[], Job]:
        existing = _REGISTRY.get(name)
        if existing and existing.build is not build:
            raise ValueError(f"batch job {name!r} is already registered")
        _REGISTRY[name] = RegisteredBatchJob(
            name=name, build=build, parameters_schema=schema,
            identifying=tuple(identifying) if identifying is not None else None,
            incrementer=incrementer,
            description=description or (build.__doc__ or "").strip().split("\n")[0],
        )  # fmt: skip
        return build

    return register


def batch_job_get(name: str) -> RegisteredBatchJob | None:
    return _REGISTRY.get(name)


def batch_job_names() -> list[str]:
    return sorted(_REGISTRY)


def batch_params_errors(name: str, params, *, partial: bool = False) -> list[str]:
    """Ways `params` break the job's schema. `partial`: a job's saved defaults, to which a
    start adds the rest, so required parameters may still be missing."""
    schema = _REGISTRY[name].parameters_schema
    if partial:
        schema = {key: value for key, value in schema.items() if key != "required"}
    validator = jsonschema.Draft202012Validator(schema)
    messages = []
    for error in sorted(validator.iter_errors(params), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(part) for part in error.absolute_path)
        messages.append(f"{where}: {error.message}" if where else error.message)
    return messages
