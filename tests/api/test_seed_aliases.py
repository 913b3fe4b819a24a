"""The seed-era routes, called with exactly the seed's request bodies."""

from datetime import UTC, datetime, timedelta

import pytest

from batchjobs.models import BatchJob, BatchLog, BatchSchedule, ExecutionStatus, Trigger
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db

CREATE = "/api/v1/batch-job"
ENDPOINT = "http://127.0.0.1:8000/demo/ping"


def later(**delta) -> datetime:
    return (datetime.now(UTC) + timedelta(**delta)).replace(microsecond=0)


def test_create_with_a_repeat_makes_an_http_job_and_an_hourly_interval_schedule(api, settings):
    settings.BATCHJOBS_TIME_ZONE = "UTC"
    first = later(days=1)
    body = {
        "name": "daily-report",
        "description": "Pulls the daily report",
        "endpointUrl": ENDPOINT,
        "scheduleTime": first.strftime("%Y-%m-%dT%H:%M:%S"),  # the seed sent local times
        "repeatIntervalHour": 24,
    }

    response = api("operator").post(CREATE, body, format="json")

    assert response.status_code == 201, response.json()
    job = BatchJob.objects.get(name="daily-report")
    schedule = job.schedules.get()
    assert (job.kind, job.http_url, job.description) == ("http", ENDPOINT, body["description"])
    assert job.http_method == "POST"  # the seed's orchestrator POSTs
    assert (schedule.kind, schedule.interval_every, schedule.interval_unit) == (
        "interval", 24, "hours",
    )  # fmt: skip
    assert schedule.start_at == first
    assert schedule.next_fire_at == first
    answer = response.json()
    assert (answer["id"], answer["scheduleId"]) == (job.pk, schedule.pk)
    assert answer["endpointUrl"] == ENDPOINT
    assert answer["repeatIntervalHour"] == 24
    assert answer["nextRunTime"] == first.isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize("repeat", [{"repeatIntervalHour": 0}, {"repeatIntervalHour": None}, {}])
def test_create_without_a_repeat_runs_once_at_the_time(api, repeat):
    when = later(hours=2)
    body = {
        "name": "one-off",
        "description": "",
        "endpointUrl": ENDPOINT,
        "scheduleTime": when.isoformat(),
        **repeat,
    }

    response = api("operator").post(CREATE, body, format="json")

    assert response.status_code == 201, response.json()
    schedule = BatchSchedule.objects.get(job__name="one-off")
    assert (schedule.kind, schedule.run_at, schedule.next_fire_at) == ("once", when, when)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"endpointUrl": "ftp://example.com/x"}, "endpointUrl"),
        ({"endpointUrl": "http://10.0.0.8/internal"}, "endpointUrl"),
        ({"scheduleTime": "2001-01-01T00:00:00Z", "repeatIntervalHour": 0}, "scheduleTime"),
        ({"scheduleTime": "next tuesday"}, "scheduleTime"),
        ({"repeatIntervalHour": -1}, "repeatIntervalHour"),
        ({"repeatIntervalHour": "24"}, "repeatIntervalHour"),
        ({"name": "bad/name"}, "name"),
        ({"cron": "* * * * *"}, "cron"),
    ],
)
def test_bad_input_names_the_seed_field_and_writes_nothing(api, change, field):
    body = {
        "name": "report",
        "description": "",
        "endpointUrl": ENDPOINT,
        "scheduleTime": later(hours=1).isoformat(),
        "repeatIntervalHour": 1,
        **change,
    }

    response = api("operator").post(CREATE, body, format="json")

    assert response.status_code == 400
    assert field in response.json()["errors"], response.json()
    assert not BatchJob.objects.exists()
    assert not BatchSchedule.objects.exists()


def test_logs_list_the_jobs_executions_newest_first(api):
    job = handler_job("noop")
    older = BatchLog.objects.create(job=job, trigger=Trigger.SCHEDULE, status="COMPLETED")
    newer = BatchLog.objects.create(job=job, trigger=Trigger.API, status="FAILED")
    BatchLog.objects.create(job=handler_job("noop"), trigger=Trigger.API)
    client = api("reader")

    response = client.get(f"/api/v1/logs/job/{job.pk}")
    limited = client.get(f"/api/v1/logs/job/{job.pk}", {"limit": 1})
    unknown = client.get("/api/v1/logs/job/987654")

    assert response.status_code == 200
    assert [(row["id"], row["status"]) for row in response.json()] == [
        (newer.pk, "FAILED"), (older.pk, "COMPLETED"),
    ]  # fmt: skip
    assert [row["id"] for row in limited.json()] == [newer.pk]
    assert unknown.status_code == 404


def test_start_by_name_answers_with_the_execution_id(api):
    handler_job("noop", name="nightly export")

    response = api("operator").post(
        "/api/jobs/nightly export/start", HTTP_ACCEPT="application/json"
    )

    assert response.status_code == 200
    body = response.json()
    execution = BatchLog.objects.get(pk=body["executionId"])
    assert body == {"executionId": execution.pk, "jobName": "nightly export", "status": "QUEUED"}
    assert execution.trigger == Trigger.API


def test_start_by_name_of_a_registered_batch_job_needs_no_set_up(api):
    response = api("operator").post(
        "/api/jobs/tests.numbers/start",
        {"params": {"run": 5, "count": 2}},
        format="json",
        HTTP_ACCEPT="application/json",
    )

    assert response.status_code == 200
    execution = BatchLog.objects.get(pk=response.json()["executionId"])
    assert (execution.job.kind, execution.status) == ("batch", ExecutionStatus.QUEUED)
    assert execution.instance_key


@pytest.mark.parametrize("name", ["no-such-job", "bad%00name", "%20leading-space"])
def test_start_of_an_unknown_name_is_a_404(api, name):
    response = api("operator").post(f"/api/jobs/{name}/start")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert not BatchLog.objects.exists()


def test_scheduler_has_exactly_the_seed_keys(api):
    BatchSchedule.objects.create(
        job=handler_job("noop"), kind="interval", interval_every=5, next_fire_at=later(hours=1)
    )

    body = api("reader").get("/api/scheduler").json()

    assert set(body) == {
        "isRunning", "totalJobs", "pendingJobs", "runningJobs", "completedJobs", "failedJobs",
        "nextJob",
    }  # fmt: skip
    assert set(body["nextJob"]) == {"id", "workflowName", "scheduledTime", "type"}
