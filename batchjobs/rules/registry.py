"""What the handler and batch-job registries share: entries registered by name, once each, and
the JSON Schema their parameters are checked against.

Pure: no Django, no I/O. The registries (batchjobs.handlers.registry, batchjobs.batch.registry)
say what an entry is; this module keeps them by name and judges parameters.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Generic, TypeVar

import jsonschema

OPEN_OBJECT_SCHEMA: dict[str, Any] = {"type": "object"}

EntryT = TypeVar("EntryT")


@dataclass(frozen=True)
class ParameterSchema:
    """A JSON Schema (draft 2020-12) for parameters, checked when it is made."""

    schema: dict[str, Any]
    # Built once: compiling a schema costs more than running a small handler.
    validator: jsonschema.Draft202012Validator = field(repr=False, compare=False)

    @classmethod
    def checked(cls, schema: dict[str, Any] | None) -> "ParameterSchema":
        """The schema (any object when None); raises jsonschema.SchemaError if it is not one."""
        schema = schema or OPEN_OBJECT_SCHEMA
        jsonschema.Draft202012Validator.check_schema(schema)
        return cls(schema=schema, validator=jsonschema.Draft202012Validator(schema))

    @cached_property
    def _partial_validator(self) -> jsonschema.Draft202012Validator:
        without_required = {key: value for key, value in self.schema.items() if key != "required"}
        return jsonschema.Draft202012Validator(without_required)

    def errors(self, params: Any, *, partial: bool = False) -> list[str]:
        """Every way `params` break the schema, as readable messages, in path order (empty:
        valid). `partial`: saved defaults to which a start adds the rest, so parameters the
        schema requires may still be missing."""
        validator = self._partial_validator if partial else self.validator
        messages = []
        for error in sorted(validator.iter_errors(params), key=lambda e: list(e.absolute_path)):
            where = ".".join(str(part) for part in error.absolute_path)
            messages.append(f"{where}: {error.message}" if where else error.message)
        return messages


def first_doc_line(source: Callable[..., Any]) -> str:
    """The first line of a function's docstring: the description an entry has by default."""
    return (source.__doc__ or "").strip().split("\n")[0]


class Registry(Generic[EntryT]):
    """Entries by name. A name belongs to the function that registered it first; registering
    that same function again (a module imported twice) is allowed, another is refused."""

    def __init__(self, what: str):
        self.what = what  # for messages: "handler", "batch job"
        self._entries: dict[str, EntryT] = {}
        self._sources: dict[str, Callable[..., Any]] = {}

    def add(self, name: str, entry: EntryT, *, source: Callable[..., Any]) -> None:
        existing = self._sources.get(name)
        if existing is not None and existing is not source:
            raise ValueError(f"{self.what} {name!r} is already registered by {existing!r}")
        self._entries[name] = entry
        self._sources[name] = source

    def remove(self, name: str) -> None:
        """Forget a name (for tests that register throwaway entries)."""
        self._entries.pop(name, None)
        self._sources.pop(name, None)

    def get(self, name: str) -> EntryT | None:
        return self._entries.get(name)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[EntryT]:
        return [self._entries[name] for name in self.names()]
