"""The registries (handlers, batch jobs) and the scheduler status: beat's heartbeat, workers
seen, executions by status, the next fire due."""

import time

import pytest
from celery import current_app
from django.urls import reverse

from batchjobs.models import BatchLog, Trigger
from batchjobs.scheduling.heartbeat import BEAT_HEARTBEAT_PREFIX, beat_heartbeat_record
from batchjobs.services.schedules import schedule_create, schedule_pause
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db

STATUS = reverse("api:scheduler-status")


@pytest.fixture
def heartbeats():
    """Removes the heartbeats this test records (a real beat elsewhere may add its own)."""
    recorded: list[str] = []
    yield recorded
    with current_app.connection_for_write() as connection:
        client = connection.default_channel.client
        for beat_id in recorded:
            client.delete(f"{BEAT_HEARTBEAT_PREFIX}{beat_id}")


def test_handlers_are_listed_with_their_schemas(api):
    response = api("reader").get(reverse("api:handler-list"))

    assert response.status_code == 200
    handlers = {row["name"]: row for row in response.json()}
    assert {"noop", "sleep", "fail", "sql"} <= set(handlers)
    assert handlers["sleep"]["schema"]["type"] == "object"
    assert "seconds" in handlers["sleep"]["schema"]["properties"]
    assert handlers["sleep"]["description"]


def test_batch_jobs_are_listed_with_schema_and_identifying_parameters(api):
    response = api("reader").get(reverse("api:batch-job-list"))

    assert response.status_code == 200
    jobs = {row["name"]: row for row in response.json()}
    assert jobs["tests.numbers"]["identifying"] == ["run"]
    assert jobs["tests.numbers"]["has_incrementer"] is False
    assert jobs["tests.flow"]["identifying"] is None


def test_beat_is_alive_while_its_heartbeat_lasts(api, heartbeats):
    client = api("reader")
    heartbeats += ["beat-a", "beat-b"]

    # given: two beats (HA), one of which stops
    beat_heartbeat_record(beat_id="beat-a")
    beat_heartbeat_record(beat_id="beat-b", ttl_seconds=0.3)
    both = client.get(STATUS).json()
    time.sleep(0.5)
    one = client.get(STATUS).json()

    # then
    assert {"beat-a", "beat-b"} <= {beat["id"] for beat in both["beats"]}
    assert both["beat_alive"] is True
    assert "beat-b" not in {beat["id"] for beat in one["beats"]}
    assert "beat-a" in {beat["id"] for beat in one["beats"]}
    assert one["beat_alive"] is True
    assert client.get("/api/scheduler").json()["isRunning"] is True


def test_without_any_heartbeat_beat_is_not_alive(api, heartbeats):
    heartbeats.append("beat-gone")
    beat_heartbeat_record(beat_id="beat-gone", ttl_seconds=0.2)
    time.sleep(0.4)

    body = api("reader").get(STATUS).json()

    assert "beat-gone" not in {beat["id"] for beat in body["beats"]}
    # Alive exactly when some beat (perhaps a real one of another test) has a heartbeat.
    assert body["beat_alive"] is bool(body["beats"])


def test_counts_by_status_and_the_next_fire_due(api):
    # given
    job, disabled = handler_job("noop", name="soon"), handler_job("noop", enabled=False)
    for status in ("QUEUED", "QUEUED", "STARTED", "COMPLETED", "FAILED"):
        BatchLog.objects.create(job=job, trigger=Trigger.API, status=status)
    later = schedule_create(job=job, kind="once", delay_seconds=600)
    sooner = schedule_create(job=job, kind="once", delay_seconds=60)
    schedule_pause(schedule=schedule_create(job=job, kind="once", delay_seconds=10))
    schedule_create(job=disabled, kind="once", delay_seconds=5)
    client = api("reader")

    # when
    body = client.get(STATUS).json()
    seed = client.get("/api/scheduler").json()

    # then
    assert body["executions"] == {
        "QUEUED": 2, "STARTED": 1, "STOPPING": 0, "STOPPED": 0, "COMPLETED": 1, "FAILED": 1,
        "ABANDONED": 0, "SKIPPED": 0,
    }  # fmt: skip
    assert body["total_jobs"] == 2
    assert body["next_due"]["schedule"] == sooner.pk != later.pk
    assert (body["next_due"]["job"], body["next_due"]["job_name"]) == (job.pk, "soon")
    assert body["next_due"]["schedule_kind"] == "once"
    assert body["broker_reachable"] is True
    assert isinstance(body["workers"], list)
    assert seed == {
        "isRunning": seed["isRunning"],
        "totalJobs": 2,
        "pendingJobs": 4,  # the two queued runs and the next fires of the two live schedules
        "runningJobs": 1,
        "completedJobs": 1,
        "failedJobs": 1,
        "nextJob": {
            "id": job.pk,
            "workflowName": "soon",
            "scheduledTime": body["next_due"]["at"],
            "type": "delayed",
        },
    }


def test_nothing_due_is_null_and_left_out_of_the_seeds_card(api):
    assert api("reader").get(STATUS).json()["next_due"] is None
    assert "nextJob" not in api("reader").get("/api/scheduler").json()


@pytest.mark.integration
def test_a_running_worker_is_seen(api, worker):
    body = api("reader").get(STATUS).json()

    assert any(name.startswith(f"{worker.name}@") for name in body["workers"]), body["workers"]
