"""The admin's backfills: the "Backfill…" form from a schedule (preview, then start), the list
with progress, and pause/resume/cancel actions."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from batchjobs.models import Backfill, BackfillStatus, BatchLog, Calendar
from batchjobs.services.schedules import schedule_create
from tests.support.factories import handler_job
from tests.support.runs import IN_PROCESS_QUEUE

pytestmark = pytest.mark.django_db

ADD = reverse("admin:batchjobs_backfill_add")
CHANGELIST = reverse("admin:batchjobs_backfill_changelist")
OPERATOR = ("view_batchschedule", "view_backfill", "add_backfill", "change_backfill",
            "run_batchjob")  # fmt: skip


@pytest.fixture
def schedule():
    job = handler_job("noop", name="nightly", queue=IN_PROCESS_QUEUE)
    return schedule_create(job=job, kind="cron", cron_expression="0 9 * * *", timezone="Asia/Seoul")


def form(**fields):
    return {
        "range_start": "2026-11-01 00:00",
        "range_end": "2026-11-04 00:00",
        "max_concurrency": "2",
        "params": "{}",
    } | fields


def test_the_schedule_page_links_to_the_backfill_form(staff_client, schedule):
    page = staff_client(*OPERATOR).get(
        reverse("admin:batchjobs_batchschedule_change", args=[schedule.pk])
    )
    assert f"{ADD}?schedule={schedule.pk}" in page.content.decode()
    reader = staff_client("view_batchschedule").get(
        reverse("admin:batchjobs_batchschedule_change", args=[schedule.pk])
    )
    assert f"{ADD}?schedule={schedule.pk}" not in reader.content.decode()


def test_preview_lists_the_fires_in_the_schedules_zone_then_start_creates(staff_client, schedule):
    client = staff_client(*OPERATOR)
    url = f"{ADD}?schedule={schedule.pk}"
    preview = client.post(url, form(_preview="1"))
    assert preview.status_code == 200
    text = preview.content.decode()
    assert "2026-11-01 09:00:00 KST" in text and "2026-11-03 09:00:00 KST" in text
    assert "3 fires in the range" in text
    assert not Backfill.objects.exists()
    started = client.post(url, form(_start="1"))
    assert started.status_code == 302
    backfill = Backfill.objects.get()
    assert (backfill.fires_total, backfill.fires_created, backfill.max_concurrency) == (3, 2, 2)
    listing = client.get(CHANGELIST).content.decode()
    assert "created 2 of 3, 0 already run, 2 running" in listing


def test_bad_input_shows_on_the_field_and_saves_nothing(staff_client, schedule):
    client = staff_client(*OPERATOR)
    url = f"{ADD}?schedule={schedule.pk}"
    page = client.post(url, form(range_end="2999-01-01 00:00", _start="1"))
    assert page.status_code == 200
    assert "Must not be in the future" in str(page.context["form"].errors["range_end"])
    page = client.post(url, form(max_concurrency="0", _start="1"))
    assert "max_concurrency" in page.context["form"].errors
    assert not Backfill.objects.exists() and not BatchLog.objects.exists()


def test_actions_pause_resume_cancel(staff_client, schedule):
    client = staff_client(*OPERATOR)
    client.post(f"{ADD}?schedule={schedule.pk}", form(_start="1"))
    backfill = Backfill.objects.get()

    def act(action):
        client.post(CHANGELIST, {"action": action, ACTION_CHECKBOX_NAME: [backfill.pk]})
        backfill.refresh_from_db()
        return backfill.status

    assert act("pause") == BackfillStatus.PAUSED
    assert act("resume") == BackfillStatus.RUNNING
    assert act("cancel") == BackfillStatus.CANCELLED
    assert BatchLog.objects.filter(backfill=backfill, status="STOPPED").count() == 2
    detail = client.get(reverse("admin:batchjobs_backfill_change", args=[backfill.pk]))
    assert detail.status_code == 200
    runs = reverse("admin:batchjobs_batchlog_changelist") + f"?backfill__id__exact={backfill.pk}"
    assert runs in detail.content.decode()
    listing = staff_client("view_batchlog").get(runs)
    assert listing.status_code == 200 and len(listing.context["cl"].result_list) == 2


def test_without_run_permission_no_backfill_can_be_started(staff_client, schedule):
    client = staff_client("view_batchschedule", "view_backfill", "add_backfill")
    assert client.get(f"{ADD}?schedule={schedule.pk}").status_code == 403


def test_preview_marks_calendar_exclusions_and_an_estimated_total(staff_client, schedule):
    schedule.calendars.add(Calendar.objects.create(name="closed", excluded_dates=["2026-11-02"]))
    client = staff_client(*OPERATOR)
    text = client.post(f"{ADD}?schedule={schedule.pk}", form(_preview="1")).content.decode()
    assert "excluded, not run: 2026-11-02 is excluded by calendar" in text
    assert "Of those listed, 1 excluded and 0 moved by calendars." in text
    minutes = schedule_create(job=schedule.job, kind="cron", cron_expression="* * * * *")
    text = client.post(
        f"{ADD}?schedule={minutes.pk}", form(range_end="2026-12-01 00:00", _preview="1")
    ).content.decode()
    assert "≈ 43,201 fires in the range" in text
