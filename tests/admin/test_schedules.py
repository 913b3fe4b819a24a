from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from batchjobs.models import BatchJob, BatchSchedule
from batchjobs.services.schedules import schedule_create
from tests.support.admin_forms import form_errors, schedule_form_data
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:batchjobs_batchschedule_changelist")
ADD = reverse("admin:batchjobs_batchschedule_add")


def change_url(schedule: BatchSchedule) -> str:
    return reverse("admin:batchjobs_batchschedule_change", args=[schedule.pk])


@pytest.fixture
def job() -> BatchJob:
    return handler_job("noop", name="noop-job")


def split_datetime(field: str, moment, zone: str = "Europe/Berlin") -> dict[str, str]:
    """The admin's date and time boxes for `field`, in the schedule's time zone (the form's
    Europe/Berlin unless a test says otherwise)."""
    local = moment.astimezone(ZoneInfo(zone))
    return {f"{field}_0": f"{local:%Y-%m-%d}", f"{field}_1": f"{local:%H:%M:%S}"}


def test_list_shows_summary_with_cron_description_timezone_and_paused(admin_client, job):
    schedule_create(job=job, kind="cron", cron_expression="*/5 * * * *", timezone="Europe/Berlin")
    schedule_create(job=job, kind="interval", interval_every=10, paused=True)

    response = admin_client.get(CHANGELIST)
    paused = admin_client.get(CHANGELIST, {"paused__exact": "1"})

    content = response.content.decode()
    assert response.status_code == 200
    assert "cron &#x27;*/5 * * * *&#x27; Europe/Berlin (Every 5 minutes)" in content
    assert "every 10 minutes" in content
    assert [s.summary for s in paused.context["cl"].result_list] == ["every 10 minutes"]


def test_add_schedule_computes_its_next_fire(admin_client, job):
    response = admin_client.post(ADD, schedule_form_data(job))

    assert response.status_code == 302, form_errors(response)
    schedule = BatchSchedule.objects.get()
    assert (schedule.cron_expression, schedule.timezone, schedule.params) == (
        "30 2 * * *",
        "Europe/Berlin",
        {},
    )
    local_fire = timezone.localtime(schedule.next_fire_at, ZoneInfo("Europe/Berlin"))
    assert (local_fire.hour, local_fire.minute) == (2, 30)
    assert schedule.next_fire_at > timezone.now()


def test_once_schedule_in_the_future_fires_at_its_time(admin_client, job):
    run_at = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    data = schedule_form_data(job, kind="once", **split_datetime("run_at", run_at))

    response = admin_client.post(ADD, data)

    assert response.status_code == 302, form_errors(response)
    assert BatchSchedule.objects.get().next_fire_at == run_at


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"cron_expression": "every day"}, "cron_expression", "has 5 fields"),
        ({"timezone": "Mars/Olympus"}, "timezone", "Unknown time zone 'Mars/Olympus'"),
        ({"kind": "interval", "interval_every": "0"}, "interval_every", "more than 0"),
        ({"kind": "once"}, "run_at", "needs the instant to run at"),
        (
            {"kind": "once", **split_datetime("run_at", timezone.now() - timedelta(hours=1))},
            "run_at",
            "in the past",
        ),
        ({"params": '{"day": '}, "params", "Enter a valid JSON."),
        ({"params": "[1]"}, "params", "Must be a JSON object."),
        (
            {
                **split_datetime("start_at", timezone.now() + timedelta(days=2)),
                **split_datetime("end_at", timezone.now() + timedelta(days=1)),
            },
            "end_at",
            "after the start",
        ),
    ],
)
def test_bad_input_is_a_field_error_and_saves_nothing(admin_client, job, fields, field, message):
    response = admin_client.post(ADD, schedule_form_data(job, **fields))

    assert response.status_code == 200
    assert any(message in error for error in form_errors(response)[field])
    assert not BatchSchedule.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"cron_expression": "* * 31 2 *"}, "cron_expression",
         "Never fires: day 31 does not occur in February"),
        ({"cron_expression": "0 0 31 4 *"}, "cron_expression", "does not occur in April"),
        ({"kind": "interval", "interval_every": "2147483647", "interval_unit": "hours"},
         "interval_every", "At most 876000 hours"),
        ({"kind": "interval", "interval_every": "36501", "interval_unit": "days"},
         "interval_every", "At most 36500 days"),
        ({"kind": "interval", "interval_every": "2147483648"}, "interval_every",
         "Must be between 1 and"),
        ({"max_runs": "0"}, "max_runs", "between 1 and"),
        ({"jitter_seconds": "86401"}, "jitter_seconds", "between 0 and 86,400"),
        ({"misfire_grace_seconds": "31536001"}, "misfire_grace_seconds", "between 0 and"),
        ({"catch_up_window_seconds": "1e308"}, "catch_up_window_seconds", "whole number"),
        ({"catch_up_max": "10001"}, "catch_up_max", "between 0 and 10,000"),
    ],
)  # fmt: skip
def test_numbers_out_of_bounds_and_crons_that_never_fire_are_field_errors(
    admin_client, job, fields, field, message
):
    response = admin_client.post(ADD, schedule_form_data(job, **fields))

    assert response.status_code == 200
    assert any(message in error for error in form_errors(response)[field]), form_errors(response)
    assert not BatchSchedule.objects.exists()


def test_fire_state_is_read_only(admin_client, job):
    schedule = schedule_create(job=job, kind="cron", cron_expression="30 2 * * *")
    next_fire_at = schedule.next_fire_at

    response = admin_client.post(
        change_url(schedule),
        schedule_form_data(
            job, timezone="UTC", description="edited", run_count="99", next_fire_at_0="2030-01-01"
        ),
    )

    assert response.status_code == 302, form_errors(response)
    schedule.refresh_from_db()
    assert schedule.description == "edited"
    assert (schedule.run_count, schedule.next_fire_at) == (0, next_fire_at)


def test_change_page_previews_the_next_fires_in_the_schedule_zone(admin_client, job):
    schedule = schedule_create(
        job=job, kind="cron", cron_expression="30 2 * * *", timezone="Europe/Berlin"
    )

    response = admin_client.get(change_url(schedule))

    content = response.content.decode()
    assert response.status_code == 200
    upcoming = content[content.index("field-upcoming_fires") :]
    upcoming = upcoming[: upcoming.index("</ul>")]
    assert upcoming.count(" 02:30:00 CE") == 10  # CET or CEST: local time, every day


def test_pause_and_resume_actions(admin_client, job):
    schedule = schedule_create(job=job, kind="interval", interval_every=5)

    admin_client.post(CHANGELIST, {"action": "pause", "_selected_action": [schedule.pk]})
    schedule.refresh_from_db()
    paused = schedule.paused
    admin_client.post(CHANGELIST, {"action": "resume", "_selected_action": [schedule.pk]})
    schedule.refresh_from_db()

    assert paused is True
    assert schedule.paused is False


def test_delete_schedule(admin_client, job):
    schedule = schedule_create(job=job, kind="interval", interval_every=5)

    response = admin_client.post(
        reverse("admin:batchjobs_batchschedule_delete", args=[schedule.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not BatchSchedule.objects.exists()


PREVIEW = reverse("admin:batchjobs_batchschedule_preview")


def test_live_preview_describes_a_cron_and_lists_its_fires_in_its_zone(admin_client):
    response = admin_client.get(
        PREVIEW, {"kind": "cron", "cron_expression": "30 2 * * *", "timezone": "Europe/Berlin"}
    )

    data = response.json()
    assert response.status_code == 200 and data["errors"] == {}
    assert data["description"] == "At 02:30 AM"
    assert len(data["fires"]) == 10
    assert all(fire["local"].endswith(("02:30:00 CET", "02:30:00 CEST")) for fire in data["fires"])
    first = data["fires"][0]
    at = datetime.strptime(first["utc"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo("UTC"))
    assert f"{at.astimezone(ZoneInfo('Europe/Berlin')):%Y-%m-%d %H:%M:%S}" in first["local"]


def test_live_preview_says_what_a_save_would_refuse(admin_client):
    data = admin_client.get(
        PREVIEW, {"cron_expression": "61 * * *", "timezone": "Mars/Olympus"}
    ).json()

    assert data["fires"] == [] and data["description"] == ""
    assert "5 fields" in data["errors"]["cron_expression"][0]
    assert "Unknown time zone" in data["errors"]["timezone"][0]


def test_live_preview_needs_the_permission_to_view_schedules(staff_client):
    query = {"cron_expression": "* * * * *", "timezone": "UTC"}
    assert staff_client("view_batchjob").get(PREVIEW, query).status_code == 403
    assert staff_client("view_batchschedule").get(PREVIEW, query).status_code == 200
