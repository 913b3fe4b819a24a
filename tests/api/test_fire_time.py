"""The fire time through the API: templates checked at save (400 naming the field, nothing
saved), a start for a logical time, the resolved request in test-fire and on each attempt."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from batchjobs.models import BatchJob
from batchjobs.secrets import SECRET_MASK
from tests.support.factories import http_job
from tests.support.runs import run_in_process

pytestmark = pytest.mark.django_db

JOBS = reverse("api:job-list")
BASE = "http://127.0.0.1:8000/demo/ping"


def action(name: str, job) -> str:
    return reverse(f"api:job-{name}", args=[job.pk])


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"http_url": BASE + "?d={{ logical_date }}"}, "http_url",
         "unknown variable 'logical_date'"),
        ({"http_url": BASE + "?d={{ logical_time | day }}"}, "http_url", "unknown filter 'day'"),
        ({"http_url": BASE + '?d={{ logical_time | tz:"Seoul" }}'}, "http_url",
         "unknown time zone 'Seoul'"),
        ({"http_url": BASE + '?d={{ logical_time | date:"%Q" }}'}, "http_url",
         "'%Q' is not a date format directive"),
        ({"http_url": BASE + "?d={{ logical_time"}, "http_url",
         "{{ is not closed by }} (at character 35)"),
        ({"http_url": "http://{{ params.host }}/x"}, "http_url",
         "scheme and host must be written out"),
        ({"http_headers": [{"name": "A", "value": "ok"},
                           {"name": "X-Day", "value": "{{ today }}", "secret": True}]},
         "http_headers", "http_headers[1].value: unknown variable 'today'"),
        ({"http_body": '{"a": {{ params.a | json }'}, "http_body", "{{ is not closed by }}"),
    ],
)  # fmt: skip
def test_a_bad_template_is_a_400_naming_the_field_and_nothing_is_saved(api, fields, field, message):
    body = {"name": "templated", "kind": "http", "http_url": BASE, **fields}

    response = api("operator").post(JOBS, body, format="json")

    assert response.status_code == 400, response.json()
    assert any(message in text for text in response.json()["errors"][field]), response.json()
    assert not BatchJob.objects.filter(name="templated").exists()


def test_a_good_template_saves_and_keeps_the_hosts_limit_key(api):
    url = BASE + '/{{ data_interval_start | date:"%Y-%m-%d" }}?run={{ execution_id }}'

    response = api("operator").post(
        JOBS, {"name": "templated", "kind": "http", "http_url": url}, format="json"
    )

    assert response.status_code == 201, response.json()
    assert BatchJob.objects.get(name="templated").target_host == "127.0.0.1"


def test_a_start_for_a_logical_time_and_a_bad_one(api, httpserver):
    job = http_job(httpserver.url_for("/p") + "?d={{ logical_time }}")
    client = api("operator")

    started = client.post(
        action("start", job), {"logical_time": "2027-01-04T10:30:00+09:00"}, format="json"
    )
    refused = client.post(action("start", job), {"logical_time": "last tuesday"}, format="json")

    assert started.status_code == 202, started.json()
    assert started.json()["logical_time"] == "2027-01-04T01:30:00Z"
    assert started.json()["data_interval_start"] == started.json()["data_interval_end"]
    summary = client.get(reverse("api:execution-summary", args=[started.json()["id"]])).json()
    assert summary["logical_time"] == summary["data_interval_end"] == "2027-01-04T01:30:00Z"
    assert refused.status_code == 400
    assert "logical_time" in refused.json()["errors"]


def test_the_attempt_shows_the_request_as_sent(api, httpserver):
    httpserver.expect_request("/p").respond_with_data("ok")
    job = http_job(
        httpserver.url_for("/p") + "?d={{ logical_time }}",
        http_headers=[{"name": "X-Key", "value": "hidden-{{ params.k }}", "secret": True}],
        params={"k": "shown"},
    )
    execution = api("operator").post(
        action("start", job), {"logical_time": "2027-01-04T00:00:00Z"}, format="json"
    )
    run_in_process(execution.json()["id"])

    detail = api("reader").get(reverse("api:execution-detail", args=[execution.json()["id"]]))

    (attempt,) = detail.json()["attempt_history"]
    assert attempt["request"]["url"].endswith("/p?d=2027-01-04T00%3A00%3A00%2B00%3A00")
    assert attempt["request"]["headers"]["X-Key"] == SECRET_MASK
    assert "hidden" not in detail.content.decode()


def test_test_fire_shows_the_request_resolved(api, httpserver):
    httpserver.expect_request("/hook").respond_with_data("ok")
    job = http_job(
        httpserver.url_for("/hook") + "?region={{ params.region }}&at={{ scheduled_for }}",
        http_headers=[{"name": "X-Token", "value": "{{ params.token }}", "secret": True}],
        http_body='{"job": {{ job_name | json }}}',
        params={"region": "kr", "token": "s3cret"},
    )
    before = datetime.now(UTC)

    body = api("operator").post(action("test-fire", job)).json()

    assert body["outcome"] == "SUCCEEDED"
    assert "?region=kr&at=" in body["request"]["url"] and "{{" not in body["request"]["url"]
    assert body["request"]["headers"]["X-Token"] == SECRET_MASK
    assert body["request"]["body"] == f'{{"job": "{job.name}"}}'
    (received, _), *_ = httpserver.log
    assert received.headers["X-Token"] == "s3cret"
    assert datetime.fromisoformat(received.args["at"]) >= before.replace(microsecond=0)


def test_test_fire_of_a_template_the_defaults_cannot_fill_is_a_conflict(api, httpserver):
    job = http_job(httpserver.url_for("/hook") + "?day={{ params.day }}")

    response = api("operator").post(action("test-fire", job))

    assert response.status_code == 409
    assert "http_url: params.day has no value" in response.json()["detail"]
    assert httpserver.log == []
