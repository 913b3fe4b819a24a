"""Schedules over the API: CRUD, pause/resume, preview with DST transitions marked."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from batchjobs.models import BatchSchedule
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db

SCHEDULES = reverse("api:schedule-list")


def detail(schedule) -> str:
    return reverse("api:schedule-detail", args=[schedule.pk])


@pytest.fixture
def job():
    return handler_job("noop", name="cleanup")


def create(client, **fields):
    return client.post(SCHEDULES, fields, format="json")


def test_create_a_cron_schedule_computes_its_next_fire(api, job):
    response = create(
        api("operator"), job=job.pk, kind="cron", cron_expression="30 2 * * *",
        timezone="Europe/Berlin", description="nightly",
    )  # fmt: skip

    assert response.status_code == 201, response.json()
    body = response.json()
    schedule = BatchSchedule.objects.get(pk=body["id"])
    assert schedule.next_fire_at is not None
    assert body["next_fire_at"] is not None
    assert (body["job"], body["job_name"]) == (job.pk, "cleanup")
    local = schedule.next_fire_at.astimezone(ZoneInfo("Europe/Berlin"))
    assert (local.hour, local.minute) == (2, 30)
    assert body["cron_description"].lower().startswith("at 02:30")


def test_create_once_after_a_delay(api, job):
    before = timezone.now()

    response = create(api("operator"), job=job.pk, kind="once", delay_seconds=120)

    assert response.status_code == 201, response.json()
    schedule = BatchSchedule.objects.get(pk=response.json()["id"])
    assert schedule.kind == "once"
    assert before + timedelta(seconds=110) < schedule.run_at < before + timedelta(seconds=130)
    assert schedule.next_fire_at == schedule.run_at


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"kind": "cron", "cron_expression": "61 * * * *"}, "cron_expression", "minute field"),
        ({"kind": "cron", "cron_expression": "* *"}, "cron_expression", "5 fields"),
        ({"kind": "cron", "cron_expression": "0 3 * * *", "timezone": "Europe/Atlantis"},
         "timezone", "Unknown time zone"),
        ({"kind": "interval", "interval_every": 0}, "interval_every", "more than 0"),
        ({"kind": "once", "run_at": "2001-01-01T00:00:00Z"}, "run_at", "in the past"),
        ({"kind": "weekly"}, "kind", "not a valid choice"),
        ({"kind": "interval", "interval_every": "5"}, "interval_every", "valid integer"),
        ({"kind": "interval", "interval_every": 5, "paused": "yes"}, "paused", "valid boolean"),
        ({"kind": "once", "run_at": "tomorrow"}, "run_at", "wrong format"),
        ({"kind": "interval", "interval_every": 5, "every": 3}, "every", "Unknown field"),
    ],
)  # fmt: skip
def test_bad_schedules_are_refused_naming_the_field(api, job, fields, field, message):
    response = create(api("operator"), job=job.pk, **fields)

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert field in errors, errors
    assert message.lower() in " ".join(errors[field]).lower()
    assert not BatchSchedule.objects.exists()


def test_update_recomputes_and_delete_removes(api, job):
    client = api("admin")
    schedule_id = create(client, job=job.pk, kind="interval", interval_every=10).json()["id"]
    schedule = BatchSchedule.objects.get(pk=schedule_id)
    first_fire = schedule.next_fire_at

    changed = client.patch(
        detail(schedule), {"interval_every": 1, "interval_unit": "hours"}, format="json"
    )
    moved = client.patch(detail(schedule), {"delay_seconds": 5}, format="json")
    deleted = client.delete(detail(schedule))

    assert changed.status_code == 200, changed.json()
    assert changed.json()["interval_every"] == 1
    assert changed.json()["next_fire_at"] != first_fire.isoformat()
    assert moved.status_code == 400 and "delay_seconds" in moved.json()["errors"]
    assert deleted.status_code == 204
    assert not BatchSchedule.objects.exists()


def test_pause_and_resume(api, job):
    client = api("operator")
    schedule_id = create(client, job=job.pk, kind="interval", interval_every=10).json()["id"]

    paused = client.post(reverse("api:schedule-pause", args=[schedule_id]))
    stored = BatchSchedule.objects.get(pk=schedule_id).paused
    resumed = client.post(reverse("api:schedule-resume", args=[schedule_id]))

    assert paused.status_code == 200 and paused.json()["paused"] is True
    assert stored is True
    assert resumed.status_code == 200 and resumed.json()["paused"] is False
    assert BatchSchedule.objects.get(pk=schedule_id).paused is False


def test_preview_lists_fires_in_the_zone_and_marks_the_dst_change(api, job):
    # given: 12:00 Berlin daily, starting the week before the 2030 spring-forward (31 March)
    schedule = BatchSchedule.objects.create(
        job=job, kind="cron", cron_expression="0 12 * * *", timezone="Europe/Berlin",
        start_at=datetime(2030, 3, 28, tzinfo=UTC),
    )  # fmt: skip

    # when
    response = api("reader").get(reverse("api:schedule-preview", args=[schedule.pk]), {"count": 30})

    # then
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["timezone"] == "Europe/Berlin"
    fires = {fire["local"][:10]: fire for fire in body["fires"]}
    assert fires["2030-03-30"]["local"] == "2030-03-30T12:00:00+01:00"
    assert fires["2030-03-31"]["local"] == "2030-03-31T12:00:00+02:00"
    assert fires["2030-03-31"]["dst_change"] is True
    assert fires["2030-03-31"]["at"] == "2030-03-31T10:00:00Z"
    assert fires["2030-03-31"]["utc_offset_seconds"] == 7200
    assert not fires["2030-04-01"]["dst_change"]


@pytest.mark.parametrize("count", ["0", "1001", "many"])
def test_preview_count_out_of_range_is_a_400(api, job, count):
    schedule = BatchSchedule.objects.create(job=job, kind="interval", interval_every=5)

    response = api("reader").get(
        reverse("api:schedule-preview", args=[schedule.pk]), {"count": count}
    )

    assert response.status_code == 400
    assert "count" in response.json()["errors"]


def test_schedule_of_an_unknown_job_is_a_400_naming_job(api):
    response = create(api("operator"), job=987654, kind="interval", interval_every=5)

    assert response.status_code == 400
    assert "job" in response.json()["errors"]
