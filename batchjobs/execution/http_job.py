"""Jobs of kind `http`: build the request, call it, judge the answer."""

import json
import re
from typing import Any

import requests
from django.conf import settings

from batchjobs.models import AttemptStatus, BatchJob
from batchjobs.models.job import AssertionKind
from batchjobs.secrets import secret_decrypt

from .http_client import BlockedDestination, DeadlineExceeded, ResponseTooLarge, http_call
from .outcome import AttemptOutcome

IDEMPOTENCY_HEADER = "Idempotency-Key"
ATTEMPT_HEADER = "X-Batchjobs-Attempt"
_JSON_PATH_TOKEN = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]|\[['\"]([^'\"]+)['\"]\]")


def status_spec_parse(spec: str) -> list[tuple[int, int]]:
    """'200-299,304' -> [(200, 299), (304, 304)]; ValueError with a readable reason."""
    ranges = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            raise ValueError("empty entry; use e.g. '200-299' or '200,204'")
        low_text, _, high_text = part.partition("-")
        if not low_text.strip().isdigit() or (high_text and not high_text.strip().isdigit()):
            raise ValueError(f"{part!r} is not a status code or a range of them")
        low, high = int(low_text), int(high_text or low_text)
        if not (100 <= low <= high <= 599):
            raise ValueError(f"{part!r} must lie within 100-599, low to high")
        ranges.append((low, high))
    return ranges


def json_path_parse(path: str) -> list[str | int]:
    """'$.items[0].id' -> ['items', 0, 'id']; ValueError for anything else."""
    if not path.startswith("$"):
        raise ValueError("a JSON path starts with $, e.g. $.status or $.items[0].id")
    tokens: list[str | int] = []
    position = 1
    while position < len(path):
        match = _JSON_PATH_TOKEN.match(path, position)
        if not match:
            raise ValueError(f"cannot read the JSON path at {path[position:]!r}")
        key, index, quoted = match.groups()
        tokens.append(int(index) if index is not None else (key or quoted))
        position = match.end()
    return tokens


_MISSING = object()


def json_path_value(document: Any, tokens: list[str | int]) -> Any:
    for token in tokens:
        try:
            document = document[token]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return document


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
            return f"response body does not match /{job.http_assertion}/"
    elif job.http_assertion_kind == AssertionKind.JSON_PATH:
        try:
            document = json.loads(body)
        except ValueError:
            return "response body is not JSON, so the JSON path assertion cannot hold"
        actual = json_path_value(document, json_path_parse(job.http_assertion))
        if actual is _MISSING:
            return f"{job.http_assertion} is not in the response"
        expected = json.loads(job.http_assertion_value)
        if actual != expected:
            return f"{job.http_assertion} is {json.dumps(actual)}, expected {json.dumps(expected)}"
    return None


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
            error=f"timed out after {job.timeout_seconds:g}s: {exc}",
            retryable=True,
        )
    except requests.RequestException as exc:
        return AttemptOutcome(
            status=AttemptStatus.FAILED, error=f"connection failed: {exc}", retryable=True
        )

    text = response.text()
    common = {"http_status": response.status, "response_excerpt": text[:excerpt_chars]}
    expected = status_spec_parse(job.http_expected_status)
    if not any(low <= response.status <= high for low, high in expected):
        retryable = response.status >= 500 or (400 <= response.status < 500 and job.retry_on_4xx)
        return AttemptOutcome(
            status=AttemptStatus.FAILED,
            error=f"HTTP {response.status}, expected {job.http_expected_status}",
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
