"""HTTP jobs run in-process against a real local HTTP server, one attempt per call."""

import time

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from batchjobs.errors import InvalidInput
from batchjobs.models import AttemptStatus, BatchJob, ExecutionStatus
from tests.support.factories import http_job, start
from tests.support.runs import run_in_process
from tests.support.sockets import AcceptCounter

pytestmark = pytest.mark.django_db


def test_success_sends_idempotency_key_and_attempt_and_stores_excerpt(httpserver):
    # given
    httpserver.expect_request("/ok", method="POST").respond_with_json({"status": "ok"})
    job = http_job(
        httpserver.url_for("/ok"),
        http_method="POST",
        http_body='{"a": 1}',
        http_headers=[{"name": "X-Token", "value": "s3cret", "secret": True}],
    )
    # when
    execution = run_in_process(start(job))
    # then
    assert execution.status == ExecutionStatus.COMPLETED
    request, _ = httpserver.log[0]
    assert request.headers["Idempotency-Key"] == str(execution.pk)
    assert request.headers["X-Batchjobs-Attempt"] == "1"
    assert request.headers["X-Token"] == "s3cret"
    assert request.get_data() == b'{"a": 1}'
    attempt = execution.attempt_rows.get()
    assert attempt.status == AttemptStatus.SUCCEEDED
    assert attempt.http_status == 200
    assert '"status": "ok"' in attempt.response_excerpt


def test_503_then_success_takes_two_attempts_with_the_same_key(httpserver):
    httpserver.expect_ordered_request("/flaky").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request("/flaky").respond_with_data("fine")
    job = http_job(httpserver.url_for("/flaky"), max_attempts=3)
    execution = start(job)

    first = run_in_process(execution)
    assert first.status == ExecutionStatus.QUEUED
    assert first.next_attempt_at is not None
    assert "HTTP 503" in first.error
    second = run_in_process(execution)

    assert second.status == ExecutionStatus.COMPLETED
    assert second.attempts == 2
    keys = [request.headers["Idempotency-Key"] for request, _ in httpserver.log]
    attempts = [request.headers["X-Batchjobs-Attempt"] for request, _ in httpserver.log]
    assert keys == [str(execution.pk)] * 2
    assert attempts == ["1", "2"]
    statuses = list(second.attempt_rows.values_list("status", "http_status"))
    assert statuses == [(AttemptStatus.FAILED, 503), (AttemptStatus.SUCCEEDED, 200)]


def test_404_is_not_retried(httpserver):
    httpserver.expect_request("/missing").respond_with_data("no", status=404)
    execution = run_in_process(start(http_job(httpserver.url_for("/missing"), max_attempts=3)))
    assert execution.status == ExecutionStatus.FAILED
    assert execution.attempts == 1
    assert execution.attempt_rows.get().retryable is False


def test_404_is_retried_when_the_job_says_so(httpserver):
    httpserver.expect_request("/missing").respond_with_data("no", status=404)
    job = http_job(httpserver.url_for("/missing"), max_attempts=2, retry_on_4xx=True)
    execution = start(job)
    assert run_in_process(execution).status == ExecutionStatus.QUEUED
    assert run_in_process(execution).status == ExecutionStatus.FAILED
    assert len(httpserver.log) == 2


def test_timeout_ends_the_attempt_at_the_timeout(httpserver):
    def slow(request):
        time.sleep(3)
        return Response("late")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    job = http_job(httpserver.url_for("/slow"), timeout_seconds=0.5, max_attempts=1)
    started = time.monotonic()
    execution = run_in_process(start(job))
    elapsed = time.monotonic() - started
    assert execution.status == ExecutionStatus.FAILED
    assert execution.attempt_rows.get().status == AttemptStatus.TIMED_OUT
    assert elapsed < 1.5, f"attempt took {elapsed:.2f}s for a 0.5s timeout"


def test_timeout_is_retryable(httpserver):
    def slow(request):
        time.sleep(1.5)
        return Response("late")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    execution = run_in_process(start(http_job(httpserver.url_for("/slow"), timeout_seconds=0.3)))
    assert execution.status == ExecutionStatus.QUEUED
    assert execution.attempt_rows.get().retryable is True


def test_regex_assertion_failure_fails_without_retry(httpserver):
    httpserver.expect_request("/page").respond_with_data("status: degraded")
    job = http_job(
        httpserver.url_for("/page"),
        http_assertion_kind="regex",
        http_assertion=r"status: (ok|fine)",
    )
    execution = run_in_process(start(job))
    assert execution.status == ExecutionStatus.FAILED
    assert "does not match" in execution.error
    assert execution.attempts == 1


@pytest.mark.parametrize(
    ("body", "expected_status", "message"),
    [
        ({"data": {"items": [{"ready": True}]}}, ExecutionStatus.COMPLETED, ""),
        (
            {"data": {"items": [{"ready": False}]}},
            ExecutionStatus.FAILED,
            "is false, expected true",
        ),
        ({"data": {"items": []}}, ExecutionStatus.FAILED, "is not in the response"),
    ],
)
def test_json_path_assertion(httpserver, body, expected_status, message):
    httpserver.expect_request("/api").respond_with_json(body)
    job = http_job(
        httpserver.url_for("/api"),
        http_assertion_kind="json_path",
        http_assertion="$.data.items[0].ready",
        http_assertion_value="true",
    )
    execution = run_in_process(start(job))
    assert execution.status == expected_status
    assert message in execution.error


def test_expected_status_list(httpserver):
    httpserver.expect_request("/accepted").respond_with_data("", status=202)
    job = http_job(httpserver.url_for("/accepted"), http_expected_status="200,204")
    execution = run_in_process(start(job))
    assert execution.status == ExecutionStatus.FAILED
    assert "HTTP 202, expected 200,204" in execution.error


def test_response_excerpt_is_truncated(httpserver, settings):
    settings.BATCHJOBS_RESPONSE_EXCERPT_CHARS = 100
    httpserver.expect_request("/big").respond_with_data("x" * 5000)
    execution = run_in_process(start(http_job(httpserver.url_for("/big"))))
    assert execution.status == ExecutionStatus.COMPLETED
    assert execution.attempt_rows.get().response_excerpt == "x" * 100


def test_response_over_the_size_cap_fails(httpserver, settings):
    settings.BATCHJOBS_HTTP_MAX_RESPONSE_BYTES = 1000
    httpserver.expect_request("/huge").respond_with_data("y" * 5000)
    execution = run_in_process(start(http_job(httpserver.url_for("/huge"))))
    assert execution.status == ExecutionStatus.FAILED
    assert "cap" in execution.error


def test_redirect_to_a_blocked_address_is_refused_before_connecting(httpserver, settings):
    # given a public-looking start that redirects to loopback, which is not allow-listed
    settings.BATCHJOBS_HTTP_ALLOWLIST = [f"127.0.0.1:{httpserver.port}"]
    httpserver.expect_request("/hop").respond_with_data(
        "", status=302, headers={"Location": "http://127.0.0.2:9/secret"}
    )
    execution = run_in_process(start(http_job(httpserver.url_for("/hop"), max_attempts=3)))
    assert execution.status == ExecutionStatus.FAILED
    assert "non-public address" in execution.error
    assert execution.attempts == 1


def test_redirect_is_followed_to_an_allowed_address(httpserver):
    httpserver.expect_request("/old").respond_with_data(
        "", status=301, headers={"Location": "/new"}
    )
    httpserver.expect_request("/new").respond_with_data("moved here")
    execution = run_in_process(start(http_job(httpserver.url_for("/old"))))
    assert execution.status == ExecutionStatus.COMPLETED
    assert execution.result["url"].endswith("/new")


def test_connection_refused_is_retryable(httpserver):
    url = httpserver.url_for("/gone")
    httpserver.stop()
    try:
        execution = run_in_process(start(http_job(url, max_attempts=2)))
    finally:
        httpserver.start()
    assert execution.status == ExecutionStatus.QUEUED
    assert "connection failed" in execution.error


# --- one reading of the URL (issue #11, 7) ---------------------------------------------------


@pytest.fixture
def sink():
    counter = AcceptCounter()
    yield counter
    counter.close()


@pytest.fixture
def allowed():
    counter = AcceptCounter()
    yield counter
    counter.close()


def backslash_url(*, dialled: int, checked: int) -> str:
    # urllib.parse reads port `checked`, urllib3 (the connection) port `dialled`
    return f"http://127.0.0.1:{dialled}\\@127.0.0.1:{checked}/"


def test_a_backslash_url_is_refused_at_save_naming_the_field(sink, allowed, settings):
    settings.BATCHJOBS_HTTP_ALLOWLIST = [f"127.0.0.1:{allowed.port}"]
    with pytest.raises(InvalidInput) as refused:
        http_job(backslash_url(dialled=sink.port, checked=allowed.port))
    assert refused.value.field_errors == {
        "http_url": ["the URL contains a backslash, which parsers read differently"]
    }
    assert not BatchJob.objects.exists()


def test_a_backslash_url_stored_behind_validation_fails_at_run_without_a_connection(
    sink, allowed, settings
):
    # given a job whose URL was changed behind the services' back
    settings.BATCHJOBS_HTTP_ALLOWLIST = [f"127.0.0.1:{allowed.port}"]
    job = http_job(f"http://127.0.0.1:{allowed.port}/", max_attempts=3)
    BatchJob.objects.filter(pk=job.pk).update(
        http_url=backslash_url(dialled=sink.port, checked=allowed.port)
    )
    job.refresh_from_db()

    # when
    execution = run_in_process(start(job))

    # then: refused for good, and nothing was dialled
    assert execution.status == ExecutionStatus.FAILED
    assert execution.attempts == 1
    assert "backslash" in execution.error
    assert (sink.accepts, allowed.accepts) == (0, 0)


@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_to_a_backslash_url_fails_the_job_without_a_connection(
    status, sink, allowed, settings
):
    # given an allow-listed server answering with a raw Location header (a framework would
    # percent-encode the backslash)
    settings.BATCHJOBS_HTTP_ALLOWLIST = [f"127.0.0.1:{allowed.port}"]
    location = backslash_url(dialled=sink.port, checked=allowed.port)
    allowed.response = (
        f"HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n"
        "Connection: close\r\n\r\n"
    ).encode()

    # when
    execution = run_in_process(
        start(http_job(f"http://127.0.0.1:{allowed.port}/jump", max_attempts=3))
    )

    # then
    assert execution.status == ExecutionStatus.FAILED
    assert execution.attempts == 1
    assert "redirect to a refused URL" in execution.error
    assert (allowed.accepts, sink.accepts) == (1, 0)


# --- secret headers stay with the origin (issue #11, 8) --------------------------------------


@pytest.fixture
def other_server():
    server = HTTPServer(host="127.0.0.1")
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


SECRET_HEADERS = [
    {"name": "Authorization", "value": "Bearer t0ken", "secret": True},
    {"name": "X-Api-Key", "value": "k3y", "secret": True},
    {"name": "X-Plain", "value": "kept", "secret": False},
]


def landing_request(*servers: HTTPServer):
    (landed,) = [
        request for server in servers for request, _ in server.log if request.path == "/landing"
    ]
    return landed


@pytest.mark.parametrize(
    "landing",
    ["http://localhost:{port}/landing", "http://127.0.0.1:{other_port}/landing"],
    ids=["another-host", "another-port"],
)
def test_secret_headers_are_not_sent_after_a_redirect_to_another_origin(
    landing, httpserver, other_server, settings
):
    # given
    settings.BATCHJOBS_HTTP_ALLOWLIST = ["127.0.0.1"]
    landing = landing.format(port=httpserver.port, other_port=other_server.port)
    httpserver.expect_request("/start").respond_with_data(
        "", status=302, headers={"Location": landing}
    )
    for server in (httpserver, other_server):
        server.expect_request("/landing").respond_with_data("landed")
    job = http_job(f"http://127.0.0.1:{httpserver.port}/start", http_headers=SECRET_HEADERS)

    # when
    execution = run_in_process(start(job))

    # then
    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    first = httpserver.log[0][0]
    landed = landing_request(httpserver, other_server)
    assert (first.headers["Authorization"], first.headers["X-Api-Key"]) == ("Bearer t0ken", "k3y")
    assert ("Authorization" in landed.headers, "X-Api-Key" in landed.headers) == (False, False)
    assert landed.headers["X-Plain"] == "kept"
    assert landed.headers["Idempotency-Key"] == str(execution.pk)
    assert landed.headers["X-Batchjobs-Attempt"] == "1"


def test_secret_headers_are_sent_after_a_redirect_within_the_origin(httpserver, settings):
    settings.BATCHJOBS_HTTP_ALLOWLIST = ["127.0.0.1"]
    httpserver.expect_request("/start").respond_with_data(
        "", status=302, headers={"Location": "/landing"}
    )
    httpserver.expect_request("/landing").respond_with_data("landed")
    job = http_job(f"http://127.0.0.1:{httpserver.port}/start", http_headers=SECRET_HEADERS)

    execution = run_in_process(start(job))

    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    landed = landing_request(httpserver)
    assert (landed.headers["Authorization"], landed.headers["X-Api-Key"]) == ("Bearer t0ken", "k3y")
