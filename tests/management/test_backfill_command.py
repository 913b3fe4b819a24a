"""`manage.py backfill`: dry run, create, status, pause/resume/cancel, errors named by option."""

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from batchjobs.models import Backfill, BatchLog, Calendar
from batchjobs.services.schedules import schedule_create
from tests.support.factories import handler_job
from tests.support.runs import IN_PROCESS_QUEUE

pytestmark = pytest.mark.django_db

EXIT_BAD_INPUT, EXIT_CONFLICT = 2, 4


def cli(*args: str) -> tuple[int, Any]:
    out = StringIO()
    try:
        call_command("backfill", *args, "--json", stdout=out)
        code = 0
    except SystemExit as exited:
        code = int(exited.code or 0)
    return code, json.loads(out.getvalue())


@pytest.fixture
def schedule():
    job = handler_job("noop", queue=IN_PROCESS_QUEUE)
    return schedule_create(job=job, kind="cron", cron_expression="0 9 * * *", timezone="Asia/Seoul")


def test_dry_run_reads_times_in_the_schedules_zone_and_saves_nothing(schedule):
    code, data = cli(str(schedule.pk), "--from", "2026-11-01", "--to", "2026-11-03T09:00",
                     "--dry-run")  # fmt: skip
    assert code == 0
    assert data["total"] == 3
    assert data["fires"][0]["at"] == "2026-11-01T00:00:00+00:00"  # 09:00 in Seoul
    assert not Backfill.objects.exists()
    out = StringIO()
    call_command("backfill", str(schedule.pk), "--from", "2026-11-01", "--to", "2026-11-03T09:00",
                 "--dry-run", stdout=out)  # fmt: skip
    assert "2026-11-01T09:00:00+09:00" in out.getvalue()
    assert "3 fire(s) in the range, 3 listed; nothing saved." in out.getvalue()


def test_create_status_pause_resume_cancel(schedule):
    code, created = cli(str(schedule.pk), "--from", "2026-11-01", "--to", "2026-11-05",
                        "--concurrency", "2")  # fmt: skip
    assert code == 0, created
    assert (created["fires_total"], created["fires_created"], created["active"]) == (4, 2, 2)
    pk = str(created["id"])
    assert cli("status", pk)[1]["progress"] == "created 2 of 4, 0 already run, 2 running"
    assert [item["id"] for item in cli("status")[1]] == [created["id"]]
    assert cli("pause", pk)[1]["status"] == "paused"
    assert cli("pause", pk)[0] == EXIT_CONFLICT
    assert cli("resume", pk)[1]["status"] == "running"
    assert cli("cancel", pk)[1]["status"] == "cancelled"
    assert BatchLog.objects.filter(backfill_id=created["id"], status="STOPPED").count() == 2
    assert cli("status", "99999")[0] == EXIT_BAD_INPUT


def test_bad_input_names_the_option_and_saves_nothing(schedule):
    code, data = cli(str(schedule.pk), "--from", "2026-11-01", "--to", "2999-01-01")
    assert code == EXIT_BAD_INPUT and "--to" in data["fields"]
    code, data = cli(str(schedule.pk), "--from", "soon", "--to", "2026-11-02")
    assert code == EXIT_BAD_INPUT and "--from" in data["fields"]
    code, data = cli(str(schedule.pk), "--from", "2026-11-01", "--to", "2026-11-02",
                     "--concurrency", "0")  # fmt: skip
    assert code == EXIT_BAD_INPUT and "--concurrency" in data["fields"]
    code, data = cli("424242", "--from", "2026-11-01", "--to", "2026-11-02")
    assert code == EXIT_BAD_INPUT and "schedule" in data["fields"]
    assert not Backfill.objects.exists() and not BatchLog.objects.exists()
    with pytest.raises(CommandError, match="--to"):
        call_command("backfill", str(schedule.pk), "--from", "2026-11-01", stdout=StringIO())


def test_dry_run_marks_an_estimated_total_and_the_fires_a_calendar_excludes(schedule):
    # given a daily 09:00 schedule whose calendar excludes 2026-11-02, and one every minute
    schedule.calendars.add(Calendar.objects.create(name="closed", excluded_dates=["2026-11-02"]))
    minutes = schedule_create(job=schedule.job, kind="cron", cron_expression="* * * * *")
    out = StringIO()
    call_command("backfill", str(schedule.pk), "--from", "2026-11-01", "--to", "2026-11-03T09:00",
                 "--dry-run", stdout=out)  # fmt: skip
    assert "2026-11-02T09:00:00+09:00  (excluded, not run: 2026-11-02 is excluded" in out.getvalue()
    assert "Of those listed, 1 excluded and 0 moved by calendars." in out.getvalue()
    out = StringIO()
    call_command("backfill", str(minutes.pk), "--from", "2026-01-01", "--to", "2026-03-01",
                 "--dry-run", stdout=out)  # fmt: skip
    assert "≈ 84,961 fire(s) in the range, 1000 listed; nothing saved." in out.getvalue()
