"""Hooks the layers above register when the app starts, for execution to call upward without
importing them (DESIGN.md §5): batchjobs/apps.py registers the notification service's handler.
"""

import logging
from typing import Protocol

logger = logging.getLogger(__name__)


class ExecutionEndedHook(Protocol):
    def __call__(self, *, execution_id: int, status: str) -> object: ...


# Called once the outcome of an attempt is committed, with the status it left the execution in.
execution_ended_hooks: list[ExecutionEndedHook] = []


def execution_ended_hook_register(hook: ExecutionEndedHook) -> None:
    """Call `hook(execution_id=..., status=...)` after each recorded outcome; registering the
    same function again changes nothing (ready() may run more than once in tests)."""
    if hook not in execution_ended_hooks:
        execution_ended_hooks.append(hook)


def execution_ended(*, execution_id: int, status: str) -> None:
    """Run every hook; one that raises is logged and never fails the job nor the others."""
    for hook in execution_ended_hooks:
        try:
            hook(execution_id=execution_id, status=status)
        except Exception:
            logger.exception("hook %r failed for execution %s", hook, execution_id)
