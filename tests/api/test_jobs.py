"""Jobs over the API: CRUD, start (with an idempotency key), enable/disable, test-fire."""

import pytest
from django.urls import reverse

from batchjobs.models import (
    AuditEntry,
    BatchJob,
    BatchLog,
    BatchSchedule,
    ExecutionStatus,
    JobKind,
    Trigger,
)
from batchjobs.secrets import SECRET_MASK, secret_decrypt
from batchjobs.services.jobs import job_create
from tests.support.factories import handler_job, http_job
from tests.support.runs import run_in_process

pytestmark = pytest.mark.django_db

JOBS = reverse("api:job-list")
LOCAL_URL = "http://127.0.0.1:8000/demo/ping"


def detail(job) -> str:
    return reverse("api:job-detail", args=[job.pk])


def action(name: str, job) -> str:
    return reverse(f"api:job-{name}", args=[job.pk])


def test_create_returns_the_job_and_records_who(api):
    # when
    response = api("admin").post(
        JOBS,
        {
            "name": "nightly",
            "kind": "handler",
            "handler_name": "sleep",
            "params": {"seconds": 1},
            "timeout_seconds": 30,
            "overlap_policy": "skip",
        },
        format="json",
    )

    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    job = BatchJob.objects.get(name="nightly")
    assert body["id"] == job.pk
    assert (body["kind"], body["handler_name"], body["params"]) == (
        "handler",
        "sleep",
        {"seconds": 1},
    )
    assert (job.timeout_seconds, job.overlap_policy) == (30, "skip")
    assert body["created_by"] == job.created_by.username == "admin-user"
    assert body["latest_execution"] is None
    assert body["schedule_count"] == 0


def test_list_shows_latest_execution_and_schedule_count_and_filters(api):
    # given
    pinged = http_job(LOCAL_URL, name="ping")
    handler_job("noop", name="quiet", enabled=False)
    BatchSchedule.objects.create(job=pinged, kind="interval", interval_every=5)
    BatchLog.objects.create(job=pinged, trigger=Trigger.API, status=ExecutionStatus.COMPLETED)
    latest = BatchLog.objects.create(job=pinged, trigger=Trigger.API, status="FAILED")
    client = api("reader")

    # when
    everything = client.get(JOBS).json()
    disabled = client.get(JOBS, {"enabled": "false"}).json()
    by_kind = client.get(JOBS, {"kind": "http"}).json()
    by_part = client.get(JOBS, {"name_contains": "PIN"}).json()
    newest_first = client.get(JOBS, {"ordering": "-name"}).json()
    first_page = client.get(JOBS, {"limit": 1}).json()

    # then
    rows = {row["name"]: row for row in everything["results"]}
    assert rows["ping"]["latest_execution"]["id"] == latest.pk
    assert rows["ping"]["latest_execution"]["status"] == "FAILED"
    assert rows["ping"]["schedule_count"] == 1
    assert rows["ping"]["target"] == f"GET {LOCAL_URL}"
    assert [row["name"] for row in disabled["results"]] == ["quiet"]
    assert [row["name"] for row in by_kind["results"]] == ["ping"]
    assert [row["name"] for row in by_part["results"]] == ["ping"]
    assert [row["name"] for row in newest_first["results"]] == ["quiet", "ping"]
    assert first_page["count"] == 2 and len(first_page["results"]) == 1
    assert first_page["next"]


def test_update_put_and_patch_go_through_the_service(api):
    job = handler_job("sleep", name="sleeper", params={"seconds": 1})
    client = api("operator")

    patched = client.patch(detail(job), {"description": "sleeps"}, format="json")
    put = client.put(
        detail(job),
        {"name": "sleeper-2", "kind": "handler", "handler_name": "sleep", "max_attempts": 5},
        format="json",
    )
    refused = client.patch(detail(job), {"params": {"seconds": "long"}}, format="json")

    assert patched.status_code == 200 and patched.json()["description"] == "sleeps"
    assert put.status_code == 200, put.json()
    job.refresh_from_db()
    assert (job.name, job.max_attempts, job.description) == ("sleeper-2", 5, "sleeps")
    assert refused.status_code == 400
    assert "params" in refused.json()["errors"]
    job.refresh_from_db()
    assert job.params == {"seconds": 1}


def test_secret_header_values_are_masked_and_a_mask_keeps_the_stored_value(api):
    # given
    job = http_job(
        LOCAL_URL,
        http_headers=[
            {"name": "Authorization", "value": "Bearer s3cret", "secret": True},
            {"name": "X-Plain", "value": "visible", "secret": False},
        ],
    )
    client = api("operator")

    # when
    shown = client.get(detail(job)).json()["http_headers"]
    sent_back = client.patch(
        detail(job), {"http_headers": [*shown, {"name": "X-New", "value": "n"}]}, format="json"
    )
    revealing = client.patch(
        detail(job),
        {"http_headers": [{"name": "Authorization", "value": SECRET_MASK, "secret": False}]},
        format="json",
    )

    # then
    assert shown[0] == {"name": "Authorization", "value": SECRET_MASK, "secret": True}
    assert shown[1]["value"] == "visible"
    assert "s3cret" not in str(sent_back.json())
    assert sent_back.status_code == 200
    job.refresh_from_db()
    assert secret_decrypt(job.http_headers[0]["value"]) == "Bearer s3cret"
    assert job.http_headers[2] == {"name": "X-New", "value": "n"}
    assert revealing.status_code == 400
    assert "http_headers" in revealing.json()["errors"]


def test_delete_removes_the_job_its_schedules_and_finished_executions(api):
    job = handler_job("noop")
    BatchSchedule.objects.create(job=job, kind="interval", interval_every=5)
    BatchLog.objects.create(job=job, trigger=Trigger.API, status=ExecutionStatus.COMPLETED)

    response = api("admin").delete(detail(job))

    assert response.status_code == 204
    assert not BatchJob.objects.filter(pk=job.pk).exists()
    assert not BatchSchedule.objects.exists()
    assert not BatchLog.objects.exists()


def test_delete_is_refused_while_an_execution_is_queued(api):
    job = handler_job("noop")
    queued = BatchLog.objects.create(job=job, trigger=Trigger.API, status=ExecutionStatus.QUEUED)

    response = api("admin").delete(detail(job))

    assert response.status_code == 409
    assert str(queued.pk) in response.json()["detail"]
    assert BatchJob.objects.filter(pk=job.pk).exists()


def test_start_queues_with_params_and_the_same_key_returns_the_same_execution(api):
    job = handler_job("sleep", params={"seconds": 1})
    client = api("operator")

    first = client.post(
        action("start", job),
        {"params": {"seconds": 0.5}},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-1",
    )
    again = client.post(
        action("start", job),
        {"params": {"seconds": 0.5}},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-1",
    )
    other = client.post(action("start", job), format="json")

    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"] != other.json()["id"]
    execution = BatchLog.objects.get(pk=first.json()["id"])
    assert (execution.trigger, execution.params) == (Trigger.API, {"seconds": 0.5})
    assert execution.idempotency_key == "k-1"
    assert execution.created_by.username == "operator-user"
    assert BatchLog.objects.count() == 2


def test_start_of_a_disabled_job_is_a_conflict(api):
    job = handler_job("noop", enabled=False)

    response = api("operator").post(action("start", job), format="json")

    assert response.status_code == 409
    assert "disabled" in response.json()["detail"]
    assert not BatchLog.objects.exists()


def test_start_of_a_completed_batch_instance_is_a_conflict(api):
    # given: instance run=7 of tests.numbers completed
    client = api("operator")
    job = job_create(name="tests.numbers", kind=JobKind.BATCH, batch_job_name="tests.numbers")
    started = client.post(action("start", job), {"params": {"run": 7, "count": 3}}, format="json")
    assert run_in_process(started.json()["id"]).status == ExecutionStatus.COMPLETED

    # when
    again = client.post(action("start", job), {"params": {"run": 7, "count": 3}}, format="json")
    another = client.post(action("start", job), {"params": {"run": 8, "count": 3}}, format="json")

    # then
    assert again.status_code == 409
    assert "already completed" in again.json()["detail"]
    assert another.status_code == 202
    assert BatchLog.objects.count() == 2


def test_enable_and_disable(api):
    job = handler_job("noop")
    client = api("operator")

    disabled = client.post(action("disable", job))
    enabled_later = BatchJob.objects.get(pk=job.pk).enabled
    enabled = client.post(action("enable", job))

    assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    assert enabled_later is False
    assert enabled.status_code == 200 and enabled.json()["enabled"] is True
    assert BatchJob.objects.get(pk=job.pk).enabled is True


def test_test_fire_makes_one_real_call_and_records_nothing(api, httpserver):
    # given
    httpserver.expect_request("/hook", method="POST").respond_with_json({"ok": True}, status=201)
    job = http_job(
        httpserver.url_for("/hook"),
        http_method="POST",
        http_body='{"a": 1}',
        http_expected_status="201",
        http_headers=[{"name": "X-Token", "value": "s3cret", "secret": True}],
    )

    # when
    response = api("operator").post(action("test-fire", job))

    # then
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["outcome"] == "SUCCEEDED"
    assert body["request"]["method"] == "POST"
    assert body["request"]["headers"]["X-Token"] == SECRET_MASK
    assert body["request"]["body"] == '{"a": 1}'
    assert body["response"]["status"] == 201
    assert '"ok"' in body["response"]["excerpt"]
    (received, _), *_ = httpserver.log
    assert received.headers["X-Token"] == "s3cret"
    assert received.headers["X-Batchjobs-Attempt"] == "0"
    assert not BatchLog.objects.exists()


def test_test_fire_reports_a_failed_check_as_a_run_would(api, httpserver):
    httpserver.expect_request("/down").respond_with_data("busy", status=503)
    job = http_job(httpserver.url_for("/down"))

    body = api("operator").post(action("test-fire", job)).json()

    assert (body["outcome"], body["retryable"]) == ("FAILED", True)
    assert "HTTP 503" in body["error"]
    assert body["response"]["excerpt"] == "busy"


def test_test_fire_of_a_handler_job_is_a_conflict(api):
    response = api("operator").post(action("test-fire", handler_job("noop")))

    assert response.status_code == 409
    assert "only HTTP jobs" in response.json()["detail"]


def test_start_next_instance_without_an_incrementer_is_a_conflict(api):
    job = handler_job("noop")

    response = api("operator").post(action("start-next-instance", job))

    assert response.status_code == 409
    assert "incrementer" in response.json()["detail"]


def test_changes_through_the_api_are_audited_under_the_caller(api):
    client = api("operator")
    job_id = client.post(
        JOBS, {"name": "audited", "kind": "handler", "handler_name": "noop"}, format="json"
    ).json()["id"]
    job = BatchJob.objects.get(pk=job_id)
    client.patch(detail(job), {"description": "changed"}, format="json")
    client.post(action("disable", job))
    client.post(action("enable", job))
    execution_id = client.post(action("start", job)).json()["id"]
    client.post(reverse("api:execution-stop", args=[execution_id]))

    entries = AuditEntry.objects.order_by("pk").values_list("action", "actor_name")

    assert list(entries) == [
        ("created", "operator-user"),
        ("changed", "operator-user"),
        ("disabled", "operator-user"),
        ("enabled", "operator-user"),
        ("started", "operator-user"),
        ("stopped", "operator-user"),
    ]
