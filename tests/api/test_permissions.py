"""Who may do what: the permission matrix over every endpoint, CSRF on session writes, the
schema's configurable openness, throttling."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.throttling import UserRateThrottle

from batchjobs.models import BatchJob, BatchLog, BatchSchedule, ExecutionStatus, Trigger
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db

# What each role may do: reader views; operator also adds, changes and runs; admin deletes too.
GRANTED = {
    "anonymous": set(),
    "reader": {"view"},
    "operator": {"view", "write", "run"},
    "admin": {"view", "write", "run", "delete"},
}


@dataclass(frozen=True)
class World:
    job: BatchJob
    schedule: BatchSchedule
    queued: BatchLog
    failed: BatchLog
    done: BatchLog


@pytest.fixture
def world() -> World:
    job = handler_job("noop", name="matrix")
    schedule = BatchSchedule.objects.create(job=job, kind="interval", interval_every=5)

    def execution(status):
        return BatchLog.objects.create(job=job, trigger=Trigger.API, status=status)

    return World(
        job=job,
        schedule=schedule,
        queued=execution(ExecutionStatus.QUEUED),
        failed=execution(ExecutionStatus.FAILED),
        done=execution(ExecutionStatus.COMPLETED),
    )


def in_an_hour() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).isoformat()


# (method, url(world), body(world), needs, status when allowed)
ENDPOINTS = [
    ("get", lambda w: reverse("api:job-list"), None, "view", 200),
    ("post", lambda w: reverse("api:job-list"),
     lambda w: {"name": "new", "kind": "handler", "handler_name": "noop"}, "write", 201),
    ("get", lambda w: reverse("api:job-detail", args=[w.job.pk]), None, "view", 200),
    ("put", lambda w: reverse("api:job-detail", args=[w.job.pk]),
     lambda w: {"name": "matrix", "kind": "handler", "handler_name": "noop"}, "write", 200),
    ("patch", lambda w: reverse("api:job-detail", args=[w.job.pk]),
     lambda w: {"description": "x"}, "write", 200),
    ("delete", lambda w: reverse("api:job-detail", args=[w.job.pk]), None, "delete", 409),
    ("post", lambda w: reverse("api:job-start", args=[w.job.pk]), None, "run", 202),
    ("post", lambda w: reverse("api:job-start-next-instance", args=[w.job.pk]), None, "run", 409),
    ("post", lambda w: reverse("api:job-enable", args=[w.job.pk]), None, "write", 200),
    ("post", lambda w: reverse("api:job-disable", args=[w.job.pk]), None, "write", 200),
    ("post", lambda w: reverse("api:job-test-fire", args=[w.job.pk]), None, "run", 409),
    ("get", lambda w: reverse("api:schedule-list"), None, "view", 200),
    ("post", lambda w: reverse("api:schedule-list"),
     lambda w: {"job": w.job.pk, "kind": "interval", "interval_every": 1}, "write", 201),
    ("get", lambda w: reverse("api:schedule-detail", args=[w.schedule.pk]), None, "view", 200),
    ("patch", lambda w: reverse("api:schedule-detail", args=[w.schedule.pk]),
     lambda w: {"interval_every": 7}, "write", 200),
    ("delete", lambda w: reverse("api:schedule-detail", args=[w.schedule.pk]), None, "delete", 204),
    ("post", lambda w: reverse("api:schedule-pause", args=[w.schedule.pk]), None, "write", 200),
    ("post", lambda w: reverse("api:schedule-resume", args=[w.schedule.pk]), None, "write", 200),
    ("get", lambda w: reverse("api:schedule-preview", args=[w.schedule.pk]), None, "view", 200),
    ("get", lambda w: reverse("api:execution-list"), None, "view", 200),
    ("get", lambda w: reverse("api:execution-detail", args=[w.done.pk]), None, "view", 200),
    ("get", lambda w: reverse("api:execution-summary", args=[w.done.pk]), None, "view", 200),
    ("get", lambda w: reverse("api:execution-steps", args=[w.done.pk]), None, "view", 200),
    ("get", lambda w: reverse("api:execution-running") + "?job=matrix", None, "view", 200),
    ("post", lambda w: reverse("api:execution-stop", args=[w.queued.pk]), None, "run", 200),
    ("post", lambda w: reverse("api:execution-restart", args=[w.failed.pk]), None, "run", 202),
    ("post", lambda w: reverse("api:execution-abandon", args=[w.failed.pk]), None, "run", 200),
    ("get", lambda w: reverse("api:handler-list"), None, "view", 200),
    ("get", lambda w: reverse("api:batch-job-list"), None, "view", 200),
    ("get", lambda w: reverse("api:scheduler-status"), None, "view", 200),
    ("post", lambda w: "/api/v1/batch-job",
     lambda w: {"name": "seed", "description": "", "endpointUrl": "http://127.0.0.1:8000/",
                "scheduleTime": in_an_hour(), "repeatIntervalHour": 1}, "write", 201),
    ("get", lambda w: f"/api/v1/logs/job/{w.job.pk}", None, "view", 200),
    ("post", lambda w: "/api/jobs/matrix/start", None, "run", 200),
    ("get", lambda w: "/api/scheduler", None, "view", 200),
]  # fmt: skip


def endpoint_id(endpoint) -> str:
    method, url, _, needs, _ = endpoint
    return f"{method}-{needs}-{ENDPOINTS.index(endpoint)}"


@pytest.mark.parametrize("role", list(GRANTED))
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=endpoint_id)
def test_permission_matrix(api, world, role, endpoint):
    method, url, body, needs, allowed_status = endpoint

    response = getattr(api(role), method)(url(world), body(world) if body else None, format="json")

    if role == "anonymous":
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Token"
    elif needs in GRANTED[role]:
        assert response.status_code == allowed_status, response.content
    else:
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "permission_denied"


def test_a_forbidden_write_changes_nothing(api, world):
    api("reader").patch(
        reverse("api:job-detail", args=[world.job.pk]), {"description": "hacked"}, format="json"
    )
    api("operator").delete(reverse("api:job-detail", args=[world.job.pk]))

    world.job.refresh_from_db()
    assert world.job.description == ""


# --- session authentication and CSRF ---------------------------------------------------------


@pytest.fixture
def browser(make_user) -> Client:
    """A logged-in browser session that enforces CSRF, as a real browser meets it."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("operator"))
    return client


def test_a_session_write_without_the_csrf_token_is_refused(browser):
    response = browser.post(
        reverse("api:job-list"),
        {"name": "csrf", "kind": "handler", "handler_name": "noop"},
        content_type="application/json",
    )

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not BatchJob.objects.exists()


def test_a_session_write_with_the_csrf_token_passes(browser):
    browser.get(reverse("admin:login"))  # any page that renders a form hands out the cookie
    token = browser.cookies[settings.CSRF_COOKIE_NAME].value

    response = browser.post(
        reverse("api:job-list"),
        {"name": "csrf", "kind": "handler", "handler_name": "noop"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )

    assert response.status_code == 201
    assert BatchJob.objects.filter(name="csrf").exists()


def test_session_reads_need_no_csrf_token(browser):
    assert browser.get(reverse("api:job-list")).status_code == 200


def test_token_writes_need_no_csrf_token(api):
    client = api("operator")
    client.handler.enforce_csrf_checks = True

    response = client.post(
        reverse("api:job-list"),
        {"name": "t", "kind": "handler", "handler_name": "noop"},
        format="json",
    )

    assert response.status_code == 201


def test_tokens_can_be_created_in_the_admin(admin_client, admin_user):
    response = admin_client.post(
        reverse("admin:authtoken_tokenproxy_add"), {"user": admin_user.pk}, follow=True
    )

    assert response.status_code == 200
    assert Token.objects.filter(user=admin_user).exists()


def test_a_wrong_token_is_a_401(api):
    client = api("anonymous")
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    response = client.get(reverse("api:job-list"))

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


# --- the schema ------------------------------------------------------------------------------


def test_schema_and_docs_are_public_by_default(api):
    client = api("anonymous")

    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    docs = client.get("/api/docs/")

    assert schema.status_code == 200
    assert "/api/v1/jobs/{id}/start" in schema.json()["paths"]
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()


def test_schema_can_require_a_login(api, settings):
    settings.BATCHJOBS_API_SCHEMA_PUBLIC = False

    anonymous = api("anonymous").get("/api/schema/")
    docs = api("anonymous").get("/api/docs/")
    reader = api("reader").get("/api/schema/")

    assert anonymous.status_code == docs.status_code == 401
    assert reader.status_code == 200


# --- throttling ------------------------------------------------------------------------------


def test_anonymous_callers_are_throttled(api):
    allowed = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["anon"].split("/")[0])
    client = api("anonymous")

    answers = [client.get("/api/docs/").status_code for _ in range(allowed + 1)]

    assert answers[:allowed] == [200] * allowed
    assert answers[-1] == 429


def test_each_user_is_throttled_at_the_user_rate(api, monkeypatch):
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "3/minute"})
    reader, operator = api("reader"), api("operator")

    answers = [reader.get(reverse("api:job-list")) for _ in range(4)]
    other = operator.get(reverse("api:job-list"))

    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert answers[-1].json()["code"] == "throttled"
    assert int(answers[-1]["Retry-After"]) > 0
    assert other.status_code == 200
