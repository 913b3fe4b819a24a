"""The API through a real HTTP client (requests) against a running server: what a program on
another machine sees, from the socket up."""

from datetime import UTC, datetime, timedelta

import pytest
import requests
from rest_framework.authtoken.models import Token

from batchjobs.models import BatchLog, ExecutionStatus

pytestmark = pytest.mark.django_db(transaction=True)

# Committed executions are published: on a queue no worker reads they stay QUEUED, whatever
# worker another test has running.
PARKED = "parked"


@pytest.fixture
def base(live_server) -> str:
    return f"{live_server.url}/api"


@pytest.fixture
def http(make_user) -> requests.Session:
    """A requests session carrying an operator's token, as a program would."""
    session = requests.Session()
    token = Token.objects.create(user=make_user("operator"))
    session.headers["Authorization"] = f"Token {token.key}"
    yield session
    session.close()


def test_a_job_from_creation_to_a_stopped_execution(http, base):
    # create
    created = http.post(
        f"{base}/v1/jobs",
        json={
            "name": "live",
            "kind": "handler",
            "handler_name": "sleep",
            "params": {"seconds": 1},
            "queue": PARKED,
        },
        timeout=10,
    )
    assert created.status_code == 201, created.text
    job = created.json()

    # list and read
    listed = http.get(f"{base}/v1/jobs", params={"name": "live"}, timeout=10).json()
    assert [row["id"] for row in listed["results"]] == [job["id"]]
    assert http.get(f"{base}/v1/jobs/{job['id']}", timeout=10).json()["name"] == "live"

    # start twice with one key: one execution
    start = f"{base}/v1/jobs/{job['id']}/start"
    first = http.post(start, json={}, headers={"Idempotency-Key": "live-1"}, timeout=10)
    again = http.post(start, json={}, headers={"Idempotency-Key": "live-1"}, timeout=10)
    assert first.status_code == again.status_code == 202
    execution_id = first.json()["id"]
    assert again.json()["id"] == execution_id

    # stop it before a worker takes it, then it cannot be stopped again
    stopped = http.post(f"{base}/v1/executions/{execution_id}/stop", timeout=10)
    assert stopped.json()["status"] == "STOPPED"
    refused = http.post(f"{base}/v1/executions/{execution_id}/stop", timeout=10)
    assert refused.status_code == 409
    assert refused.headers["Content-Type"] == "application/json"

    # filters over HTTP
    listed = http.get(
        f"{base}/v1/executions", params={"job": job["id"], "status": "STOPPED"}, timeout=10
    ).json()
    assert [row["id"] for row in listed["results"]] == [execution_id]
    assert BatchLog.objects.get(pk=execution_id).status == ExecutionStatus.STOPPED


def test_schedule_preview_and_scheduler_status(http, base):
    job = http.post(
        f"{base}/v1/jobs",
        json={"name": "cron", "kind": "handler", "handler_name": "noop"},
        timeout=10,
    ).json()
    schedule = http.post(
        f"{base}/v1/schedules",
        json={"job": job["id"], "kind": "cron", "cron_expression": "*/15 * * * *"},
        timeout=10,
    )
    assert schedule.status_code == 201, schedule.text

    preview = http.get(
        f"{base}/v1/schedules/{schedule.json()['id']}/preview", params={"count": 4}, timeout=10
    ).json()
    status = http.get(f"{base}/v1/scheduler", timeout=10).json()

    minutes = [datetime.fromisoformat(fire["at"]).minute for fire in preview["fires"]]
    assert len(minutes) == 4 and all(minute % 15 == 0 for minute in minutes)
    assert status["next_due"]["schedule"] == schedule.json()["id"]
    assert status["next_due"]["at"] == preview["fires"][0]["at"]


def test_seed_routes_over_http(http, base):
    when = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0).isoformat()
    created = http.post(
        f"{base}/v1/batch-job",
        json={
            "name": "seed-live",
            "description": "from the seed client",
            "endpointUrl": "http://127.0.0.1:8000/demo/ping",
            "scheduleTime": when,
            "repeatIntervalHour": 6,
        },
        timeout=10,
    )
    assert created.status_code == 201, created.text
    parked = http.patch(
        f"{base}/v1/jobs/{created.json()['id']}", json={"queue": PARKED}, timeout=10
    )
    assert parked.status_code == 200

    started = http.post(f"{base}/jobs/seed-live/start", timeout=10)
    logs = http.get(f"{base}/v1/logs/job/{created.json()['id']}", timeout=10)
    scheduler = http.get(f"{base}/scheduler", timeout=10)

    # requests accepts */*: the seed's text answer, as Spring's ResponseEntity<String> gave it
    assert started.status_code == 200
    execution_id = logs.json()[0]["id"]
    assert started.text == f"Job launched with ID: {execution_id}"
    assert [row["id"] for row in logs.json()] == [execution_id]
    # waiting to run: the queued start and the 6-hourly schedule's next fire
    assert scheduler.json()["pendingJobs"] == 2
    assert scheduler.json()["totalJobs"] == 1


def test_errors_over_http_are_json_and_name_the_fields(http, base, live_server):
    bad_json = http.post(
        f"{base}/v1/jobs",
        data=b'{"name": ',
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    wrong = http.post(f"{base}/v1/jobs", json={"name": 3, "kind": "x", "z": 1}, timeout=10)
    missing = http.get(f"{base}/v1/jobs/999999", timeout=10)
    anonymous = requests.get(f"{live_server.url}/api/v1/jobs", timeout=10)
    schema = requests.get(f"{live_server.url}/api/schema/?format=json", timeout=30)

    assert bad_json.status_code == 400 and "body" in bad_json.json()["errors"]
    assert wrong.status_code == 400 and {"name", "kind", "z"} <= set(wrong.json()["errors"])
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"] == "Token"
    assert schema.status_code == 200 and schema.json()["openapi"].startswith("3.")


def test_session_login_then_csrf_protected_write(live_server, make_user):
    """A browser: log in through the admin, then write with the CSRF token from the cookie."""
    user = make_user("operator")
    user.is_staff = True
    user.save()
    browser = requests.Session()
    login_url = f"{live_server.url}/admin/login/"
    browser.get(login_url, timeout=10)
    browser.post(
        login_url,
        data={
            "username": "operator-user",
            "password": "x",
            "csrfmiddlewaretoken": browser.cookies["csrftoken"],
        },
        headers={"Referer": login_url},
        timeout=10,
    )
    body = {"name": "browser", "kind": "handler", "handler_name": "noop"}

    without = browser.post(f"{live_server.url}/api/v1/jobs", json=body, timeout=10)
    with_token = browser.post(
        f"{live_server.url}/api/v1/jobs",
        json=body,
        headers={"X-CSRFToken": browser.cookies["csrftoken"], "Referer": login_url},
        timeout=10,
    )

    assert without.status_code == 403 and "CSRF" in without.json()["detail"]
    assert with_token.status_code == 201, with_token.text
