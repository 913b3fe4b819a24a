"""Jobs of kind `http`: build the request, call it, judge the answer."""

import json
import re
from typing import Any

import requests
from django.conf import settings
from django.utils.translation import gettext

from batchjobs.http.client import DeadlineExceeded, ResponseTooLarge, http_call
from batchjobs.http.guard import BlockedDestination
from batchjobs.models import AttemptStatus, BatchJob
from batchjobs.models.job import AssertionKind
from batchjobs.rules.json_path import MISSING, json_path_parse, json_path_value
from batchjobs.rules.status_spec import status_in_spec, status_spec_parse
from batchjobs.secrets import secret_decrypt

from .outcome import AttemptOutcome
from .timeout import timed_out_message

IDEMPOTENCY_HEADER = "Idempotency-Key"
ATTEMPT_HEADER = "X-Batchjobs-Attempt"


def headers_for_request(job: BatchJob, *, execution_id: int, attempt: int) -> dict[str, str]:
    """The request's headers: the only place a secret header value is decrypted."""
    headers = {header["name"]: secret_decrypt(header["value"]) for header in job.http_headers}
    headers[IDEMPOTENCY_HEADER] = str(execution_id)
    headers[ATTEMPT_HEADER] = str(attempt)
    return headers


def assertion_failure(job: BatchJob, body: str) -> str | None:
    """Why the body fails the job's assertion, or None when it passes (or there is none)."""
    if job.http_assertion_kind == AssertionKind.REGEX:
        if not re.search(job.http_assertion, body):
            return gettext("response body does not match /%(regex)s/") % {
                "regex": job.http_assertion
            }
    elif job.http_assertion_kind == AssertionKind.JSON_PATH:
        try:
            document = json.loads(body)
        except ValueError:
            return gettext("response body is not JSON, so the JSON path assertion cannot hold")
        actual = json_path_value(document, json_path_parse(job.http_assertion))
        if actual is MISSING:
            return gettext("%(path)s is not in the response") % {"path": job.http_assertion}
        expected = json.loads(job.http_assertion_value)
        if actual != expected:
            return gettext("%(path)s is %(actual)s, expected %(expected)s") % {
                "path": job.http_assertion,
                "actual": json.dumps(actual),
                "expected": json.dumps(expected),
            }
    return None


# The errors below are written by the worker in the deployment's language (LANGUAGE_CODE).
def run_http_job(
    job: BatchJob, *, execution_id: int, attempt: int, deadline: float
) -> AttemptOutcome:
    excerpt_chars = settings.BATCHJOBS_RESPONSE_EXCERPT_CHARS
    try:
        response = http_call(
            method=job.http_method,
            url=job.http_url,
            headers=headers_for_request(job, execution_id=execution_id, attempt=attempt),
            body=job.http_body.encode() if job.http_body else None,
            deadline=deadline,
            secret_headers=[header["name"] for header in job.http_headers if header.get("secret")],
        )
    except BlockedDestination as exc:
        return AttemptOutcome(status=AttemptStatus.FAILED, error=str(exc), retryable=False)
    except ResponseTooLarge as exc:
        return AttemptOutcome(status=AttemptStatus.FAILED, error=str(exc), retryable=False)
    except (DeadlineExceeded, requests.Timeout) as exc:
        return AttemptOutcome(
            status=AttemptStatus.TIMED_OUT,
            error=f"{timed_out_message(job.timeout_seconds)}: {exc}",
            retryable=True,
        )
    except requests.RequestException as exc:
        return AttemptOutcome(
            status=AttemptStatus.FAILED,
            error=gettext("connection failed: %(error)s") % {"error": exc},
            retryable=True,
        )

    text = response.text()
    common: dict[str, Any] = {
        "http_status": response.status,
        "response_excerpt": text[:excerpt_chars],
    }
    if not status_in_spec(response.status, status_spec_parse(job.http_expected_status)):
        retryable = response.status >= 500 or (400 <= response.status < 500 and job.retry_on_4xx)
        return AttemptOutcome(
            status=AttemptStatus.FAILED,
            error=gettext("HTTP %(status)s, expected %(expected)s")
            % {"status": response.status, "expected": job.http_expected_status},
            retryable=retryable,
            **common,
        )
    failure = assertion_failure(job, text)
    if failure:
        return AttemptOutcome(status=AttemptStatus.FAILED, error=failure, retryable=False, **common)
    return AttemptOutcome(
        status=AttemptStatus.SUCCEEDED,
        result={"status": response.status, "url": response.url, "bytes": len(response.body)},
        **common,
    )
