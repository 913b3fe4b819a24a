"""Jobs of kind `handler`: look the handler up, validate the params, call it."""

import json
import logging
import traceback
from collections.abc import Callable

from django.core.serializers.json import DjangoJSONEncoder
from django.utils.translation import gettext

from batchjobs.handlers.registry import (
    HandlerContext,
    NonRetryableError,
    handler_get,
    handler_params_errors,
)
from batchjobs.models import AttemptStatus, BatchLog

from .fire_time import execution_fire_time_read
from .outcome import AttemptOutcome


def run_handler_job(
    execution: BatchLog,
    *,
    attempt: int,
    deadline: float,
    report_progress: Callable[[int, int | None], None],
) -> AttemptOutcome:
    job = execution.job
    registered = handler_get(job.handler_name)
    if registered is None:
        return AttemptOutcome(
            status=AttemptStatus.FAILED,
            # Written by the worker in the deployment's language (LANGUAGE_CODE).
            error=gettext("handler %(name)s is not registered in this worker")
            % {"name": repr(job.handler_name)},
            retryable=False,
        )
    errors = handler_params_errors(job.handler_name, execution.params)
    if errors:
        return AttemptOutcome(
            status=AttemptStatus.FAILED,
            error=gettext("invalid params: %(errors)s") % {"errors": "; ".join(errors)},
            retryable=False,
        )
    context = HandlerContext(
        execution_id=execution.pk,
        attempt=attempt,
        max_attempts=execution.max_attempts,
        job_name=job.name,
        **execution_fire_time_read(execution.pk).variables(),
        deadline=deadline,
        report_progress=report_progress,
        log=logging.getLogger(f"batchjobs.handler.{job.handler_name}"),
    )
    try:
        result = registered.fn(context, **execution.params)
    except NonRetryableError:
        return AttemptOutcome(
            status=AttemptStatus.FAILED, error=traceback.format_exc(), retryable=False
        )
    except Exception:
        return AttemptOutcome(
            status=AttemptStatus.FAILED, error=traceback.format_exc(), retryable=True
        )
    try:
        json.dumps(result, cls=DjangoJSONEncoder)
    except (TypeError, ValueError) as exc:
        return AttemptOutcome(
            status=AttemptStatus.FAILED,
            error=gettext("handler returned a value that is not JSON: %(error)s") % {"error": exc},
            retryable=False,
        )
    return AttemptOutcome(status=AttemptStatus.SUCCEEDED, result=result)
