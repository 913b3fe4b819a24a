"""The handler registry: Python callables that jobs of kind `handler` run by name.

A handler is registered with a JSON Schema for its parameters::

    @handler("reports.daily", schema={"type": "object", "properties": {...}})
    def daily_report(ctx: HandlerContext, *, day: str) -> dict: ...

Contract:
- It is called as ``fn(ctx, **params)`` with params already validated against ``schema``.
- It returns a JSON-serialisable value (recorded as the execution's result) or None.
- Raising any exception fails the attempt; the attempt is retried (up to the job's
  max_attempts) unless the exception is a :class:`NonRetryableError`.
- It must tolerate running more than once for the same execution (a retry after a lost
  worker): ``ctx.execution_id`` is stable across attempts and serves as an idempotency key.
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from django.conf import settings


class NonRetryableError(Exception):
    """Raised by a handler for a failure that another attempt would not fix."""


@dataclass
class HandlerContext:
    """What a running handler knows about its execution."""

    execution_id: int
    attempt: int
    max_attempts: int
    job_name: str
    deadline: float = field(repr=False, default=0.0)
    report_progress: Callable[[int, int | None], None] = field(
        repr=False, default=lambda done, total: None
    )

    def progress(self, done: int, total: int | None = None) -> None:
        """Record how far the handler got; shown on the execution while it runs."""
        self.report_progress(done, total)


@dataclass(frozen=True)
class RegisteredHandler:
    name: str
    fn: Callable[..., Any]
    schema: dict
    description: str
    # Built once: compiling a schema costs more than running a small handler.
    validator: jsonschema.Draft202012Validator = field(repr=False, compare=False)


_REGISTRY: dict[str, RegisteredHandler] = {}
_OPEN_OBJECT_SCHEMA = {"type": "object"}


def handler(name: str, *, schema: dict | None = None, description: str = ""):
    """Register the decorated function under ``name`` with its parameter schema."""
    checked_schema = schema or _OPEN_OBJECT_SCHEMA
    jsonschema.Draft202012Validator.check_schema(checked_schema)

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        existing = _REGISTRY.get(name)
        if existing and existing.fn is not fn:
            raise ValueError(f"handler {name!r} is already registered by {existing.fn!r}")
        _REGISTRY[name] = RegisteredHandler(
            name=name,
            fn=fn,
            schema=checked_schema,
            description=description or (fn.__doc__ or "").strip().split("\n")[0],
            validator=jsonschema.Draft202012Validator(checked_schema),
        )
        return fn

    return register


def handler_get(name: str) -> RegisteredHandler | None:
    return _REGISTRY.get(name)


def handler_names() -> list[str]:
    return sorted(_REGISTRY)


def handlers_all() -> list[RegisteredHandler]:
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def handler_params_errors(name: str, params: Any) -> list[str]:
    """Every way ``params`` breaks the handler's schema, as readable messages (empty: valid)."""
    messages = []
    errors = _REGISTRY[name].validator.iter_errors(params)
    for error in sorted(errors, key=lambda e: list(e.absolute_path)):
        where = ".".join(str(part) for part in error.absolute_path)
        messages.append(f"{where}: {error.message}" if where else error.message)
    return messages


def load_handler_modules() -> None:
    """Import the built-in handlers and the modules named in BATCHJOBS_HANDLER_MODULES. (An
    installed app may register more from its own AppConfig.ready.)"""
    for module in ["batchjobs.handlers.builtin", *settings.BATCHJOBS_HANDLER_MODULES]:
        importlib.import_module(module)
