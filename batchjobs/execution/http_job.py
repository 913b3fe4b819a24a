"""Jobs of kind `http`: build the request (its fire-time templates filled in), record it on
the attempt, call it, judge the answer."""

import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import requests
from django.conf import settings
from django.db import connection
from django.utils.translation import gettext, ngettext

from batchjobs.http.client import DeadlineExceeded, HttpResponse, ResponseTooLarge, http_call
from batchjobs.http.guard import BlockedDestination
from batchjobs.models import AttemptStatus, BatchAttempt, BatchJob, BatchLog
from batchjobs.models.job import AssertionKind
from batchjobs.rules.json_path import MISSING, json_path_parse, json_path_value
from batchjobs.rules.masking import SECRET_MASK
from batchjobs.rules.status_spec import status_in_spec, status_spec_parse
from batchjobs.rules.template import (
    FIRE_TIME_VARIABLES,
    PARAMS,
    Template,
    TemplateError,
    header_escape,
    template_parse,
    template_render,
    url_escape,
    url_template_parse,
)
from batchjobs.secrets import secret_decrypt

from .attempt_log import attempt_log_note
from .fire_time import FireTime
from .outcome import AttemptOutcome
from .timeout import cooperative, timed_out_message

IDEMPOTENCY_HEADER = "Idempotency-Key"
ATTEMPT_HEADER = "X-Batchjobs-Attempt"


@dataclass(frozen=True)
class HttpRequest:
    """A request as sent: templates filled in, secret values decrypted (never shown: see
    shown())."""

    method: str
    url: str
    headers: dict[str, str]
    body: str
    secret_headers: tuple[str, ...]

    def shown(self) -> dict[str, Any]:
        """What the attempt and the test fire show: secret values masked, the body cut as
        a response excerpt is."""
        secret = {name.lower() for name in self.secret_headers}
        return {
            "method": self.method,
            "url": self.url,
            "headers": {
                name: SECRET_MASK if name.lower() in secret else value
                for name, value in self.headers.items()
            },
            "body": self.body[: settings.BATCHJOBS_RESPONSE_EXCERPT_CHARS],
        }


# Templates are read once per text and process: a worker runs the same few jobs over and over.
_parsed = lru_cache(maxsize=1024)(template_parse)
_parsed_url = lru_cache(maxsize=1024)(url_template_parse)


@dataclass(frozen=True)
class RequestTemplates:
    """A job's request as templates: header values decrypted (the only place a secret header
    value is), each part read once."""

    method: str
    url: Template
    headers: tuple[tuple[str, Template], ...]
    body: Template
    secret_headers: tuple[str, ...]

    @classmethod
    def of(cls, job: BatchJob) -> "RequestTemplates":
        """Raises TemplateError naming the field (a job saved behind validation's back)."""
        headers = []
        for index, header in enumerate(job.http_headers):
            value = _field(f"http_headers[{index}].value", _parsed, secret_decrypt(header["value"]))
            headers.append((header["name"], value))
        return cls(
            method=job.http_method,
            url=_field("http_url", _parsed_url, job.http_url),
            headers=tuple(headers),
            body=_field("http_body", _parsed, job.http_body or ""),
            secret_headers=tuple(h["name"] for h in job.http_headers if h.get("secret")),
        )

    @property
    def variables(self) -> frozenset[str]:
        """The root names its templates read."""
        parts = (self.url, self.body, *(template for _, template in self.headers))
        return frozenset().union(*(part.variables for part in parts))

    def rendered(
        self, *, execution_id: int, attempt: int, variables: Mapping[str, Any]
    ) -> HttpRequest:
        """The request of one attempt, its templates rendered with `variables` (see
        http_variables). Raises TemplateError naming the field that cannot be rendered."""
        headers = {
            name: _field(f"http_headers[{index}].value", template_render, template, variables,
                         escape=header_escape)
            for index, (name, template) in enumerate(self.headers)
        }  # fmt: skip
        headers[IDEMPOTENCY_HEADER] = str(execution_id)
        headers[ATTEMPT_HEADER] = str(attempt)
        return HttpRequest(
            method=self.method,
            url=_field("http_url", template_render, self.url, variables, escape=url_escape),
            headers=headers,
            body=_field("http_body", template_render, self.body, variables),
            secret_headers=self.secret_headers,
        )


def _field(field: str, read: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """read(*args, **kwargs), its TemplateError prefixed with the field it is about."""
    try:
        return read(*args, **kwargs)
    except TemplateError as exc:
        raise TemplateError(f"{field}: {exc}") from None


def http_variables(
    job: BatchJob,
    *,
    execution_id: int,
    attempt: int,
    params: Mapping[str, Any],
    fire_time: FireTime,
) -> dict[str, Any]:
    """What a job's templates can name (batchjobs.rules.template.VARIABLES)."""
    return {
        "execution_id": execution_id,
        "attempt": attempt,
        "job_name": job.name,
        PARAMS: dict(params),
        **fire_time.variables(),
    }


def _run_variables(
    job: BatchJob, templates: RequestTemplates, *, execution_id: int, attempt: int
) -> dict[str, Any]:
    """A run's variables. Its parameters and fire time are read from its row only when a
    template names them: the claim reads back what every run needs, not these."""
    params: Mapping[str, Any] = {}
    fire_time = FireTime(None, None, None)
    if templates.variables & (FIRE_TIME_VARIABLES | {PARAMS}):
        row = (
            BatchLog.objects.filter(pk=execution_id)
            .values_list(
                "params", "logical_time", "data_interval_start", "data_interval_end",
                "scheduled_for",
            )
            .first()
        )  # fmt: skip
        if row is not None:
            params, fire_time = row[0] or {}, FireTime.read(*row[1:])
    return http_variables(job, execution_id=execution_id, attempt=attempt, params=params,
                          fire_time=fire_time)  # fmt: skip


def _attempt_request_record(*, execution_id: int, attempt: int, request: HttpRequest) -> None:
    """Store the request on the attempt (opened by the claim) before the call, so that it is
    on view while the call is in flight. An I/O lane gives the connection back at once: the
    call needs none (see runner.execution_run)."""
    BatchAttempt.objects.filter(execution_id=execution_id, number=attempt).update(
        request=request.shown()
    )
    if cooperative() and not connection.in_atomic_block:
        connection.close()


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


def _answer_note(request: HttpRequest, response: HttpResponse, *, elapsed: float) -> None:
    """The call as a line of the attempt's log: "POST https://… → 200 in 123 ms"."""
    line = gettext("%(method)s %(url)s → %(status)s in %(ms)s ms") % {
        "method": request.method,
        "url": request.url,
        "status": response.status,
        "ms": round(elapsed * 1000),
    }
    if response.redirects:
        line += " " + ngettext(
            "(after %(count)s redirect, to %(url)s)",
            "(after %(count)s redirects, to %(url)s)",
            response.redirects,
        ) % {"count": response.redirects, "url": response.url}
    attempt_log_note(line, logger_name=__name__)


# The errors below are written by the worker in the deployment's language (LANGUAGE_CODE).
def run_http_job(
    job: BatchJob, *, execution_id: int, attempt: int, deadline: float
) -> AttemptOutcome:
    """One attempt of a run: the request built from the run's variables and recorded on the
    attempt, then sent. A template the run cannot fill (a parameter it was not given) fails
    the run without a retry: another attempt would have the same values."""
    try:
        templates = RequestTemplates.of(job)
        variables = _run_variables(job, templates, execution_id=execution_id, attempt=attempt)
        request = templates.rendered(
            execution_id=execution_id, attempt=attempt, variables=variables
        )
    except TemplateError as exc:
        return AttemptOutcome(status=AttemptStatus.FAILED, error=str(exc), retryable=False)
    _attempt_request_record(execution_id=execution_id, attempt=attempt, request=request)
    outcome = http_request_send(job, request, deadline=deadline)
    if outcome.status != AttemptStatus.SUCCEEDED:
        reason = (
            gettext("%(error)s; another attempt follows if any is left")
            if outcome.retryable
            else gettext("%(error)s; not retried")
        )
        attempt_log_note(
            reason % {"error": outcome.error}, level=logging.WARNING, logger_name=__name__
        )
    return outcome


def http_request_send(job: BatchJob, request: HttpRequest, *, deadline: float) -> AttemptOutcome:
    """Send the request (the SSRF guard checks its URL as rendered) and judge the answer."""
    excerpt_chars = settings.BATCHJOBS_RESPONSE_EXCERPT_CHARS
    sent_at = time.monotonic()
    try:
        response = http_call(
            method=request.method,
            url=request.url,
            headers=request.headers,
            body=request.body.encode() if request.body else None,
            deadline=deadline,
            secret_headers=request.secret_headers,
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

    _answer_note(request, response, elapsed=time.monotonic() - sent_at)
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
