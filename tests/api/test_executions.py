"""Executions over the API: filters, detail with attempts and steps, and the JobOperator's
stop / restart / abandon / running / summary / step summaries, with their illegal transitions."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from batchjobs.models import BatchJob, BatchLog, BatchSchedule, ExecutionStatus, JobKind, Trigger
from batchjobs.services.jobs import job_create
from tests.support.factories import handler_job
from tests.support.runs import run_in_process

pytestmark = pytest.mark.django_db

EXECUTIONS = reverse("api:execution-list")


def url(name: str, execution_id: int) -> str:
    return reverse(f"api:execution-{name}", args=[execution_id])


def numbers_job() -> BatchJob:
    """The job of the registered batch job tests.numbers (made as its first start by name
    makes it)."""
    return BatchJob.objects.filter(name="tests.numbers").first() or job_create(
        name="tests.numbers", kind=JobKind.BATCH, batch_job_name="tests.numbers"
    )


def start_numbers(client, params: dict) -> int:
    """Starts the instance `params` of tests.numbers through the v1 API; its execution id."""
    job = numbers_job()
    started = client.post(
        reverse("api:job-start", args=[job.pk]), {"params": params}, format="json"
    )
    assert started.status_code == 202, started.json()
    return started.json()["id"]


def record(job, status=ExecutionStatus.COMPLETED, trigger=Trigger.API, **fields) -> BatchLog:
    return BatchLog.objects.create(job=job, trigger=trigger, status=status, **fields)


@pytest.fixture
def failed_batch(api) -> BatchLog:
    """A FAILED execution of tests.numbers (instance run=1): its load step passed the skip
    limit after a committed chunk, so a restart has a checkpoint to resume from."""
    started = start_numbers(api("operator"), {"run": 1, "count": 12, "bad": [7, 8, 9, 10]})
    execution = run_in_process(started)
    assert execution.status == ExecutionStatus.FAILED
    return execution


def test_list_filters_by_job_schedule_status_trigger_and_time(api):
    # given
    nightly, hourly = handler_job("noop", name="nightly"), handler_job("noop", name="hourly")
    schedule = BatchSchedule.objects.create(job=hourly, kind="interval", interval_every=1)
    old = record(nightly, ExecutionStatus.FAILED)
    BatchLog.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    failed = record(nightly, ExecutionStatus.FAILED, trigger=Trigger.CLI)
    fired = record(hourly, schedule=schedule, trigger=Trigger.SCHEDULE)
    stopped = record(hourly, ExecutionStatus.STOPPED)
    client = api("reader")

    def ids(**query) -> list[int]:
        response = client.get(EXECUTIONS, query)
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["results"]]

    # then
    assert ids() == [stopped.pk, fired.pk, failed.pk, old.pk]
    assert ids(job=nightly.pk) == [failed.pk, old.pk]
    assert ids(job_name="hourly") == [stopped.pk, fired.pk]
    assert ids(schedule=schedule.pk) == [fired.pk]
    assert ids(status=["FAILED", "STOPPED"]) == [stopped.pk, failed.pk, old.pk]
    assert ids(trigger="cli") == [failed.pk]
    day_ago = (timezone.now() - timedelta(days=1)).isoformat()
    assert ids(created_after=day_ago, status="FAILED") == [failed.pk]
    assert ids(created_before=day_ago) == [old.pk]
    assert ids(ordering="id") == [old.pk, failed.pk, fired.pk, stopped.pk]


def test_detail_has_attempts_steps_and_context(api, failed_batch):
    response = api("reader").get(url("detail", failed_batch.pk))

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["job_name"], body["attempts"]) == ("FAILED", "tests.numbers", 1)
    assert [attempt["number"] for attempt in body["attempt_history"]] == [1]
    assert body["attempt_history"][0]["status"] == "FAILED"
    load = next(step for step in body["steps"] if step["step_name"] == "load")
    assert load["status"] == "FAILED"
    assert load["read_skip_count"] == 3
    assert "numbers.position" in load["execution_context"]


def test_summary_and_step_summaries_are_the_operators(api, failed_batch):
    client = api("reader")

    summary = client.get(url("summary", failed_batch.pk)).json()
    steps = client.get(url("steps", failed_batch.pk)).json()

    assert (summary["id"], summary["job"], summary["status"]) == (
        failed_batch.pk, "tests.numbers", "FAILED",
    )  # fmt: skip
    assert summary["params"] == {"run": 1, "count": 12, "bad": [7, 8, 9, 10]}
    assert [(step["step"], step["status"]) for step in steps] == [("load", "FAILED")]
    assert steps[0]["commit_count"] == 1


def test_restart_resumes_the_instance_and_a_second_restart_is_a_conflict(api, failed_batch):
    client = api("operator")

    restarted = client.post(url("restart", failed_batch.pk))
    again = client.post(url("restart", failed_batch.pk))

    assert restarted.status_code == 202, restarted.json()
    body = restarted.json()
    assert (body["status"], body["trigger"], body["restart_of"]) == (
        "QUEUED", "restart", failed_batch.pk,
    )  # fmt: skip
    assert again.status_code == 409
    assert "already restarted" in again.json()["detail"]
    assert BatchLog.objects.count() == 2


def test_restart_of_a_completed_execution_is_a_conflict(api):
    client = api("operator")
    completed = run_in_process(start_numbers(client, {"run": 2, "count": 3}))
    assert completed.status == ExecutionStatus.COMPLETED

    response = client.post(url("restart", completed.pk))

    assert response.status_code == 409
    assert "COMPLETED" in response.json()["detail"]
    assert BatchLog.objects.count() == 1


def test_abandon_then_restart_is_a_conflict(api, failed_batch):
    client = api("operator")

    abandoned = client.post(url("abandon", failed_batch.pk))
    restart = client.post(url("restart", failed_batch.pk))
    abandon_again = client.post(url("abandon", failed_batch.pk))

    assert abandoned.status_code == 200 and abandoned.json()["status"] == "ABANDONED"
    assert restart.status_code == 409
    assert abandon_again.status_code == 409
    assert BatchLog.objects.get(pk=failed_batch.pk).status == ExecutionStatus.ABANDONED


def test_stop_a_queued_execution_then_stopping_again_is_a_conflict(api):
    job = handler_job("sleep", params={"seconds": 5})
    client = api("operator")
    queued = client.post(reverse("api:job-start", args=[job.pk])).json()

    stopped = client.post(url("stop", queued["id"]))
    again = client.post(url("stop", queued["id"]))

    assert stopped.status_code == 200 and stopped.json()["status"] == "STOPPED"
    assert again.status_code == 409
    assert "cannot be stopped" in again.json()["detail"]


def test_stop_a_started_execution_asks_it_to_stop(api):
    running = record(handler_job("noop"), ExecutionStatus.STARTED)

    response = api("operator").post(url("stop", running.pk))

    assert response.status_code == 200
    assert response.json()["status"] == "STOPPING"


def test_running_lists_queued_and_running_ids_of_the_job(api):
    job = handler_job("noop", name="busy")
    queued, started = record(job, ExecutionStatus.QUEUED), record(job, ExecutionStatus.STARTED)
    record(job, ExecutionStatus.COMPLETED)
    client = api("reader")

    listed = client.get(reverse("api:execution-running"), {"job": "busy"})
    unknown = client.get(reverse("api:execution-running"), {"job": "nope"})
    missing = client.get(reverse("api:execution-running"))

    assert listed.json() == {"job": "busy", "execution_ids": [queued.pk, started.pk]}
    assert unknown.status_code == 404
    assert missing.status_code == 400 and "job" in missing.json()["errors"]


@pytest.mark.parametrize("name", ["detail", "summary", "steps", "stop", "restart", "abandon"])
def test_unknown_execution_is_a_404(api, name):
    client = api("admin")
    method = client.get if name in ("detail", "summary", "steps") else client.post

    response = method(url(name, 424242))

    assert response.status_code == 404
    assert "424242" in response.json()["detail"]
