"""Backfills over the API: dry run, create with progress, pause/resume/cancel, bad input named."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from batchjobs.models import Backfill, BatchLog, BatchSchedule, Calendar
from batchjobs.services.schedules import schedule_create
from tests.support.factories import handler_job
from tests.support.runs import IN_PROCESS_QUEUE

pytestmark = pytest.mark.django_db

BACKFILLS = reverse("api:backfill-list")
START = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
def schedule() -> BatchSchedule:
    job = handler_job("noop", queue=IN_PROCESS_QUEUE)
    return schedule_create(job=job, kind="cron", cron_expression="0 * * * *")


def body(target, **fields):
    return {
        "schedule": target.pk,
        "range_start": START.isoformat(),
        "range_end": (START + timedelta(hours=5)).isoformat(),
    } | fields


def test_dry_run_lists_the_fires_and_saves_nothing(api, schedule):
    response = api("admin").post(BACKFILLS, body(schedule, dry_run=True), format="json")
    assert response.status_code == 200, response.json()
    data = response.json()
    assert (data["total"], data["needs_confirm"], data["existing"]) == (6, False, 0)
    assert [fire["at"] for fire in data["fires"]][:2] == [
        "2026-06-01T00:00:00Z", "2026-06-01T01:00:00Z",
    ]  # fmt: skip
    assert not Backfill.objects.exists() and not BatchLog.objects.exists()


def test_create_then_read_pause_resume_cancel(api, schedule):
    client = api("admin")
    response = client.post(BACKFILLS, body(schedule, max_concurrency=2), format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert (created["fires_total"], created["fires_created"], created["active"]) == (6, 2, 2)
    assert created["progress"] == "created 2 of 6, 0 already run, 2 running"
    detail = client.get(reverse("api:backfill-detail", args=[created["id"]])).json()
    assert detail["status"] == "running" and detail["job_name"] == schedule.job.name
    assert client.get(BACKFILLS).json()["count"] == 1
    assert client.get(BACKFILLS, {"status": "paused"}).json()["count"] == 0
    assert client.get(BACKFILLS, {"schedule": schedule.pk}).json()["count"] == 1
    run = BatchLog.objects.filter(backfill_id=created["id"]).first()
    shown = client.get(reverse("api:execution-detail", args=[run.pk])).json()
    assert (shown["backfill"], shown["trigger"]) == (created["id"], "backfill")
    pk = created["id"]
    paused = client.post(reverse("api:backfill-pause", args=[pk]))
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    again = client.post(reverse("api:backfill-pause", args=[pk]))
    assert again.status_code == 409
    assert client.post(reverse("api:backfill-resume", args=[pk])).json()["status"] == "running"
    cancelled = client.post(reverse("api:backfill-cancel", args=[pk])).json()
    assert (cancelled["status"], cancelled["active"]) == ("cancelled", 0)
    assert client.get(reverse("api:backfill-detail", args=[999999])).status_code == 404


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"range_end": (datetime.now(UTC) + timedelta(days=1)).isoformat()}, "range_end"),
        ({"range_start": (START + timedelta(days=1)).isoformat()}, "range_start"),
        ({"schedule": 987654}, "schedule"),
        ({"schedule": 10**30}, "schedule"),
        ({"range_start": "0001-01-01T00:00:00Z"}, "range_start"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_concurrency": 1001}, "max_concurrency"),
        ({"params": {"unknown": 1}}, "params"),
        ({"params": [1]}, "params"),
        ({"range_start": "yesterday"}, "range_start"),
        ({"confirm": "yes"}, "confirm"),
        ({"range_end": (START + timedelta(minutes=30)).isoformat(),
          "range_start": (START + timedelta(minutes=10)).isoformat()}, "range_start"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_naming_the_field_and_saves_nothing(api, schedule, fields, field):
    response = api("admin").post(BACKFILLS, body(schedule, **fields), format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"], response.json()
    assert not Backfill.objects.exists() and not BatchLog.objects.exists()


def test_over_a_million_fires_needs_confirm(api):
    # given a schedule every second: twelve days hold 1,036,801 fires, counted on its grid
    job = handler_job("noop", queue=IN_PROCESS_QUEUE)
    every_second = schedule_create(
        job=job, kind="interval", interval_every=1, interval_unit="seconds",
        start_at=START - timedelta(days=1),
    )  # fmt: skip
    fields = {"range_end": (START + timedelta(days=12)).isoformat(), "max_concurrency": 3}
    response = api("admin").post(BACKFILLS, body(every_second, **fields), format="json")
    assert response.status_code == 400
    assert "1,000,000" in response.json()["errors"]["confirm"][0]
    assert not Backfill.objects.exists() and not BatchLog.objects.exists()
    confirmed = api("admin").post(
        BACKFILLS, body(every_second, confirm=True, **fields), format="json"
    )
    assert confirmed.status_code == 201
    data = confirmed.json()
    assert (data["fires_total"], data["fires_total_estimated"]) == (12 * 86400 + 1, False)
    assert data["fires_created"] == 3


def test_a_crons_million_fires_are_estimated_and_need_confirm(api):
    # given every minute in Seoul: two years hold 1,051,201 fires, past the exact count
    job = handler_job("noop", queue=IN_PROCESS_QUEUE)
    minutes = schedule_create(job=job, kind="cron", cron_expression="* * * * *",
                              timezone="Asia/Seoul")  # fmt: skip
    fields = {"range_start": "2024-06-01T00:00:00Z", "range_end": "2026-06-01T00:00:00Z"}
    preview = api("admin").post(BACKFILLS, body(minutes, dry_run=True, **fields), format="json")
    assert preview.status_code == 200
    data = preview.json()
    assert (data["total"], data["total_estimated"], data["needs_confirm"]) == (
        730 * 1440 + 1, True, True,
    )  # fmt: skip
    refused = api("admin").post(BACKFILLS, body(minutes, **fields), format="json")
    assert "1,000,000" in refused.json()["errors"]["confirm"][0]
    confirmed = api("admin").post(BACKFILLS, body(minutes, confirm=True, **fields), format="json")
    assert confirmed.status_code == 201
    assert confirmed.json()["fires_total_estimated"] is True
    assert confirmed.json()["progress"].startswith("created 1 of ≈ 1,051,201,")


def test_the_dry_run_marks_the_fires_a_calendar_excludes(api, schedule):
    closed = Calendar.objects.create(name="closed", excluded_dates=["2026-06-01"])
    schedule.calendars.add(closed)
    response = api("admin").post(BACKFILLS, body(schedule, dry_run=True), format="json")
    data = response.json()
    assert (data["total"], data["excluded"], data["moved"]) == (6, 6, 0)
    assert data["fires"][0]["excluded"] is True and data["fires"][0]["moved_to"] is None
    assert data["fires"][0]["reason"].startswith("2026-06-01 is excluded by calendar 'closed'")


def test_a_reader_may_list_but_not_create(api, schedule):
    assert api("reader").post(BACKFILLS, body(schedule), format="json").status_code == 403
    assert api("anonymous").get(BACKFILLS).status_code == 401
