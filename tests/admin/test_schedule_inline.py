"""The schedule rows of the job form: stacked blocks with the fields of their kind (not a
table row of every kind's boxes), saved with the job in one save."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from batchjobs.models import BatchJob, BatchSchedule
from tests.support.admin_forms import form_errors, job_form_data

pytestmark = pytest.mark.django_db

ADD = reverse("admin:batchjobs_batchjob_add")


def schedule_row(**fields: str) -> dict[str, str]:
    """One new schedule row of the job form, as a browser sends it (hidden boxes included)."""
    row = {
        "kind": "",
        "timezone": "UTC",
        "run_at_0": "",
        "run_at_1": "",
        "delay": "",
        "interval_every": "",
        "interval_unit": "minutes",
        "cron_expression": "",
        "description": "",
    } | fields
    return {"schedules-TOTAL_FORMS": "1"} | {f"schedules-0-{k}": v for k, v in row.items()}


def test_one_save_registers_an_http_job_daily_at_2am_in_seoul_with_retries(admin_client):
    data = job_form_data(
        name="seoul-nightly",
        max_attempts="4",
        **schedule_row(kind="cron", cron_expression="0 2 * * *", timezone="Asia/Seoul"),
    )

    response = admin_client.post(ADD, data)

    assert response.status_code == 302, form_errors(response)
    job = BatchJob.objects.get(name="seoul-nightly")
    schedule = job.schedules.get()
    assert (job.kind, job.max_attempts) == ("http", 4)
    assert (schedule.kind, schedule.cron_expression, schedule.timezone) == (
        "cron", "0 2 * * *", "Asia/Seoul")  # fmt: skip
    local = schedule.next_fire_at.astimezone(ZoneInfo("Asia/Seoul"))
    assert (local.hour, local.minute, local.tzname()) == (2, 0, "KST")


def test_a_row_after_a_delay_and_a_row_whose_old_cron_is_left_in_its_hidden_box(admin_client):
    before = timezone.now()
    rows = schedule_row(kind="delay", delay="300") | {
        "schedules-TOTAL_FORMS": "2",
        **{
            f"schedules-1-{k}": v
            for k, v in {
                "kind": "interval",
                "interval_every": "5",
                "interval_unit": "minutes",
                "cron_expression": "61 * * * *",  # typed before switching kind: not kept
                "timezone": "UTC",
            }.items()
        },
    }

    response = admin_client.post(ADD, job_form_data(**rows))

    assert response.status_code == 302, form_errors(response)
    delayed = BatchSchedule.objects.get(kind="once")
    every = BatchSchedule.objects.get(kind="interval")
    assert delayed.delay_seconds == 300
    assert before + timedelta(seconds=300) <= delayed.next_fire_at
    assert delayed.next_fire_at <= timezone.now() + timedelta(seconds=300)
    assert (every.interval_every, every.cron_expression) == (5, "")


def test_the_rows_are_stacked_and_carry_what_the_script_needs(admin_client):
    page = admin_client.get(ADD).content.decode()

    group = page[page.index('id="schedules-group"') :]
    assert 'class="js-inline-admin-formset inline-group"' in page
    assert "<table" not in group[: group.index("</fieldset>")]  # not a tabular row
    assert 'class="bj-schedule-kind"' in group and "data-kind-fields=" in group
    assert 'class="bj-zone-input"' in group and "data-suggest-url=" in group
    assert "batchjobs/schedule_form.js" in page and "batchjobs/time_zone_picker.js" in page
