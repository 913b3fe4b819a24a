"""A job over the API says whether a running worker consumes its queue (`queue_consumed`, read
only: true, false, or null when the broker cannot tell), and takes `max_running`."""

import uuid

import pytest
from django.urls import reverse

from batchjobs.models import BatchJob
from tests.support.factories import handler_job
from tests.support.presence import broker_unreachable, worker_announced

pytestmark = pytest.mark.django_db

JOBS = reverse("api:job-list")


def detail(job: BatchJob) -> str:
    return reverse("api:job-detail", args=[job.pk])


def test_queue_consumed_follows_the_workers_present(api):
    queue = f"api-{uuid.uuid4().hex[:8]}"
    job = handler_job("noop", queue=queue)
    client = api("reader")

    assert client.get(detail(job)).json()["queue_consumed"] is False
    with worker_announced([queue]):
        assert client.get(detail(job)).json()["queue_consumed"] is True
        (listed,) = [row for row in client.get(JOBS).json()["results"] if row["id"] == job.pk]
        assert listed["queue_consumed"] is True
    assert client.get(detail(job)).json()["queue_consumed"] is False


def test_queue_consumed_is_null_when_the_broker_cannot_be_reached(api):
    job = handler_job("noop")
    with broker_unreachable():
        response = api("reader").get(detail(job))
        listed = api("reader").get(JOBS)

    assert response.status_code == listed.status_code == 200
    assert response.json()["queue_consumed"] is None
    assert [row["queue_consumed"] for row in listed.json()["results"]] == [None]


def test_max_running_is_written_and_queue_consumed_sent_back_is_ignored(api):
    client = api("operator")
    created = client.post(
        JOBS, {"name": "capped", "kind": "handler", "handler_name": "noop", "max_running": 3},
        format="json",
    )  # fmt: skip
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["max_running"] == 3

    body.update(max_running=None, queue_consumed=True)
    changed = client.put(detail(BatchJob.objects.get(name="capped")), body, format="json")

    assert changed.status_code == 200, changed.json()
    assert changed.json()["max_running"] is None
    assert BatchJob.objects.get(name="capped").max_running is None


@pytest.mark.parametrize("value", [0, -1, 100_001, "3", 2.5])
def test_a_bad_max_running_is_refused_naming_the_field(api, value):
    response = api("operator").post(
        JOBS, {"name": "capped", "kind": "handler", "handler_name": "noop", "max_running": value},
        format="json",
    )  # fmt: skip

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["max_running"]
    assert not BatchJob.objects.filter(name="capped").exists()
