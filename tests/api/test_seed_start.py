"""POST /api/jobs/{jobName}/start as the seed's clients call it: text for text clients, JSON for
JSON clients, and every call a new run (Spring's JobOperator.startNextInstance)."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from batchjobs.models import BatchLog
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db

JSON = "application/json"


def start(client, name: str, accept: str | None = None, **kwargs):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    return client.post(f"/api/jobs/{name}/start", format="json", **headers, **kwargs)


def last_id() -> int:
    return BatchLog.objects.latest("pk").pk


@pytest.mark.parametrize(
    "accept", [None, "*/*", "text/plain", "text/html,application/xhtml+xml,*/*;q=0.8"]
)
def test_a_text_client_gets_the_seeds_exact_text(api, accept):
    handler_job("noop", name="export")

    response = start(api("operator"), "export", accept)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode() == f"Job launched with ID: {last_id()}"


def test_the_text_is_not_translated(api):
    handler_job("noop", name="export")

    response = start(api("operator"), "export", HTTP_ACCEPT_LANGUAGE="ko")

    assert response.content.decode() == f"Job launched with ID: {last_id()}"


def test_a_json_client_gets_json(api):
    handler_job("noop", name="export")

    response = start(api("operator"), "export", JSON)

    assert response["Content-Type"] == JSON
    assert response.json() == {"executionId": last_id(), "jobName": "export", "status": "QUEUED"}


@pytest.mark.parametrize("accept", [None, "text/plain", JSON])
def test_errors_are_the_apis_json_errors_for_every_client(api, accept):
    handler_job("noop", name="export")

    unknown = start(api("operator"), "no-such-job", accept)
    bad_body = start(api("operator"), "export", accept, data={"params": [1]})
    anonymous = start(api("anonymous"), "export", accept)

    assert (unknown.status_code, bad_body.status_code, anonymous.status_code) == (404, 400, 401)
    assert unknown.json() == {"detail": "no job named 'no-such-job'", "code": "not_found"}
    assert list(bad_body.json()["errors"]) == ["params"]
    assert anonymous.json()["code"] == "not_authenticated"
    assert not BatchLog.objects.exists()


def test_options_is_answered_in_json_to_a_text_client(api):
    response = api("operator").options("/api/jobs/export/start", HTTP_ACCEPT="*/*")

    assert response.status_code == 200
    assert response.json()["name"]


def test_a_client_that_takes_neither_gets_a_json_406(api):
    handler_job("noop", name="export")

    response = start(api("operator"), "export", "image/png")

    assert response.status_code == 406
    assert response.json()["code"] == "not_acceptable"
    assert not BatchLog.objects.exists()


def test_starting_a_batch_job_twice_starts_two_instances_stepping_run_id(api):
    # given: tests.numbers is registered without an incrementer, identified by "run"
    client = api("operator")

    # when
    first = start(client, "tests.numbers", JSON, data={"params": {"count": 2}})
    second = start(client, "tests.numbers", JSON)

    # then: run.id stepped as by Spring's RunIdIncrementer, the other parameters carried over
    assert (first.status_code, second.status_code) == (200, 200), second.json()
    runs = BatchLog.objects.order_by("pk")
    assert [run.params for run in runs] == [{"count": 2, "run.id": 1}, {"count": 2, "run.id": 2}]
    assert runs[0].instance_key != runs[1].instance_key


def test_a_batch_job_with_an_incrementer_of_its_own_steps_with_it(api):
    client = api("operator")

    responses = [start(client, "examples.db_migration", JSON) for _ in range(3)]

    assert [response.status_code for response in responses] == [200, 200, 200]
    assert [run.params for run in BatchLog.objects.order_by("pk")] == [
        {"run": 1}, {"run": 2}, {"run": 3},
    ]  # fmt: skip


def test_the_next_instance_follows_the_last_instance_not_a_later_restart(api):
    client = api("operator")
    start(client, "tests.numbers", JSON)
    start(client, "tests.numbers", JSON)
    first = BatchLog.objects.order_by("pk").first()
    assert first is not None
    BatchLog.objects.filter(pk=first.pk).update(status="FAILED")
    restart = client.post(f"/api/v1/executions/{first.pk}/restart", HTTP_ACCEPT=JSON)
    assert restart.status_code == 202, restart.json()

    response = start(client, "tests.numbers", JSON)

    assert response.status_code == 200, response.json()
    assert BatchLog.objects.get(pk=response.json()["executionId"]).params == {"run.id": 3}


def test_a_run_id_given_in_the_body_is_that_instance(api):
    client = api("operator")

    given = start(client, "tests.numbers", JSON, data={"params": {"run.id": 7}})
    again = start(client, "tests.numbers", JSON, data={"params": {"run.id": 7}})
    after = start(client, "tests.numbers", JSON)

    assert (given.status_code, again.status_code, after.status_code) == (200, 409, 200)
    assert BatchLog.objects.get(pk=after.json()["executionId"]).params == {"run.id": 8}


def test_the_same_idempotency_key_answers_with_the_same_run(api):
    client = api("operator")

    first = start(client, "tests.numbers", JSON, HTTP_IDEMPOTENCY_KEY="k-1")
    again = start(client, "tests.numbers", JSON, HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.json()["executionId"] == again.json()["executionId"]
    assert BatchLog.objects.count() == 1


def test_http_and_handler_jobs_start_a_run_per_call_without_run_id(api):
    handler_job("sleep", name="nap", params={"seconds": 0})
    client = api("operator")

    responses = [start(client, "nap", JSON, data={"params": {"seconds": 1}}) for _ in range(2)]

    assert [response.status_code for response in responses] == [200, 200]
    assert [run.params for run in BatchLog.objects.order_by("pk")] == [{"seconds": 1}] * 2


@pytest.mark.django_db(transaction=True)
def test_starts_at_the_same_time_step_to_as_many_instances(api):
    # given: the job exists (its first start creates it)
    clients = [api("operator") for _ in range(4)]
    start(clients[0], "tests.numbers", JSON)
    together = threading.Barrier(len(clients))

    def start_at_once(client) -> int:
        together.wait()
        try:
            return start(client, "tests.numbers", JSON).status_code
        finally:
            connection.close()  # this thread's own connection

    # when
    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        statuses = list(pool.map(start_at_once, clients))

    # then: each read the last instance after the one before it, none collided (409)
    assert statuses == [200] * len(clients)
    run_ids = sorted(run.params["run.id"] for run in BatchLog.objects.all())
    assert run_ids == [1, 2, 3, 4, 5]
