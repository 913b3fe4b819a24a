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
- What it logs (``ctx.log``, or any logger, from INFO up) is kept as its attempt's log lines,
  secrets masked, shown live in the console; ``ctx.progress(done, total)`` reports how far
  it got (a total only if it knows one).
- It should process the period it is given, not "now": ``ctx.data_interval_start`` to
  ``ctx.data_interval_end`` (aware datetimes; from the schedule's previous nominal fire to
  this one, ``ctx.logical_time``), which a retry the next morning or a restart keeps, and a
  catch-up or backfill run sets to its own fire. ``ctx.scheduled_for`` is the nominal fire
  time of a scheduled run, None for a run started by hand (whose logical time is its start
  time unless the starter gave one)::

    @handler("reports.daily")
    def daily_report(ctx: HandlerContext) -> dict:
        rows = Sale.objects.filter(sold_at__gte=ctx.data_interval_start,
                                   sold_at__lt=ctx.data_interval_end)
"""

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings

from batchjobs.rules.registry import ParameterSchema, Registry, first_doc_line

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


class NonRetryableError(Exception):
    """Raised by a handler for a failure that another attempt would not fix."""


@dataclass
class HandlerContext:
    """What a running handler knows about its execution."""

    execution_id: int
    attempt: int
    max_attempts: int
    job_name: str
    # The period the run stands for (see the module's docstring); None only in a context
    # built by hand (a test), never in a run.
    logical_time: datetime | None = None
    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None
    scheduled_for: datetime | None = None
    deadline: float = field(repr=False, default=0.0)
    report_progress: Callable[[int, int | None], None] = field(
        repr=False, default=lambda done, total: None
    )
    # What the handler logs here (or with any logger) while it runs is kept as the attempt's
    # log lines, from INFO up, secrets masked.
    log: logging.Logger = field(repr=False, default=logging.getLogger("batchjobs.handler"))

    def progress(self, done: int, total: int | None = None) -> None:
        """Record how far the handler got; shown on the execution while it runs."""
        self.report_progress(done, total)


@dataclass(frozen=True)
class RegisteredHandler:
    name: str
    fn: Callable[..., Any]
    parameters: ParameterSchema
    description: "StrOrPromise"

    @property
    def schema(self) -> dict[str, Any]:
        return self.parameters.schema


_REGISTRY: Registry[RegisteredHandler] = Registry("handler")


def handler(
    name: str, *, schema: dict[str, Any] | None = None, description: "StrOrPromise" = ""
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function under ``name`` with its parameter schema."""
    parameters = ParameterSchema.checked(schema)

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        entry = RegisteredHandler(
            name=name,
            fn=fn,
            parameters=parameters,
            description=description or first_doc_line(fn),
        )
        _REGISTRY.add(name, entry, source=fn)
        return fn

    return register


def handler_get(name: str) -> RegisteredHandler | None:
    return _REGISTRY.get(name)


def handler_names() -> list[str]:
    return _REGISTRY.names()


def handlers_all() -> list[RegisteredHandler]:
    return _REGISTRY.entries()


def handler_params_errors(name: str, params: Any) -> list[str]:
    """Every way ``params`` breaks the handler's schema, as readable messages (empty: valid)."""
    entry = _REGISTRY.get(name)
    if entry is None:
        raise KeyError(name)
    return entry.parameters.errors(params)


def load_handler_modules() -> None:
    """Import the built-in handlers and the modules named in BATCHJOBS_HANDLER_MODULES. (An
    installed app may register more from its own AppConfig.ready.)"""
    for module in ["batchjobs.handlers.builtin", *settings.BATCHJOBS_HANDLER_MODULES]:
        importlib.import_module(module)
