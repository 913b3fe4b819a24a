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
        PREVIEW, {"kind": "cron", "cron_expression": "61 * * *", "timezone": "Mars/Olympus"}
    ).json()

    assert data["fires"] == [] and data["description"] == ""
    assert "5 fields" in data["errors"]["cron_expression"][0]
    assert "Unknown time zone" in data["errors"]["timezone"][0]


def test_live_preview_needs_the_permission_to_view_schedules(staff_client):
    query = {"kind": "cron", "cron_expression": "* * * * *", "timezone": "UTC"}
    assert staff_client("view_batchjob").get(PREVIEW, query).status_code == 403
    assert staff_client("view_batchschedule").get(PREVIEW, query).status_code == 200


# --- the live preview of every kind, as typed ------------------------------------------------


def preview(client, **fields: str) -> dict:
    response = client.get(PREVIEW, fields)
    assert response.status_code == 200, response.content
    return response.json()


def fire_instants(data: dict) -> list[datetime]:
    return [
        datetime.strptime(fire["utc"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo("UTC"))
        for fire in data["fires"]
    ]


def test_preview_of_every_n_units_counts_from_now_in_words_with_a_plural(admin_client):
    before = timezone.now().replace(microsecond=0)

    data = preview(
        admin_client, kind="interval", interval_every="5", interval_unit="minutes", timezone="UTC"
    )
    one = preview(
        admin_client, kind="interval", interval_every="1", interval_unit="minutes", timezone="UTC"
    )

    assert data["errors"] == {} and data["description"] == "every 5 minutes"
    assert one["description"] == "every minute"
    fires = fire_instants(data)
    assert len(fires) == 10 and before <= fires[0] <= before + timedelta(seconds=5)
    steps = {later - earlier for earlier, later in zip(fires, fires[1:], strict=False)}
    assert steps == {timedelta(minutes=5)}


def test_preview_of_once_at_a_local_time_reads_it_in_the_schedules_zone(admin_client):
    tomorrow = (timezone.now() + timedelta(days=1)).astimezone(ZoneInfo("Asia/Seoul")).date()

    data = preview(
        admin_client,
        kind="once",
        timezone="Asia/Seoul",
        run_at_0=f"{tomorrow:%Y-%m-%d}",
        run_at_1="02:00:00",
    )

    assert data["errors"] == {}
    assert [fire["local"] for fire in data["fires"]] == [f"{tomorrow:%Y-%m-%d} 02:00:00 KST"]
    assert data["description"] == f"once at {tomorrow:%Y-%m-%d} 02:00:00 KST"


def test_preview_of_once_after_a_delay_fires_that_long_from_now(admin_client):
    before = timezone.now()

    data = preview(admin_client, kind="delay", delay="90", timezone="UTC")

    assert data["errors"] == {}
    (fire,) = fire_instants(data)
    assert before + timedelta(seconds=89) <= fire <= timezone.now() + timedelta(seconds=90)
    assert data["fires"][0]["relative"] in ("in 1 min", "in 89 s")


def test_preview_of_a_cron_in_seoul_lists_2am_kst_and_the_operators_reading(admin_client):
    data = preview(admin_client, kind="cron", cron_expression="0 2 * * *", timezone="Asia/Seoul")

    assert data["description"] == "At 02:00 AM"
    assert all(fire["local"].endswith(" 02:00:00 KST") for fire in data["fires"])
    # The operator reads UTC here (the test settings' display zone): 17:00 the day before.
    assert all(fire["yours"].endswith(" 17:00:00 UTC") for fire in data["fires"])


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"kind": "cron", "cron_expression": "61 * * * *"}, "cron_expression",
         "Cron expression: minute field: 61 is out of range 0–59."),
        ({"kind": "cron", "cron_expression": "0 24 * * *"}, "cron_expression",
         "Cron expression: hour field: 24 is out of range 0–23."),
        ({"kind": "interval", "interval_every": "0"}, "interval_every",
         "Interval every: An interval must be more than 0."),
        ({"kind": "interval", "interval_every": "36501", "interval_unit": "days"},
         "interval_every", "At most 36500 days"),
        ({"kind": "delay", "delay": "-1"}, "delay", "Delay (seconds): Must be a number of seconds"),
        ({"kind": "delay", "delay": "1e400"}, "delay", "Delay (seconds): "),
        ({"kind": "delay", "delay": ""}, "delay", "Enter the seconds to wait"),
        ({"kind": "once", "run_at_0": "2001-01-01", "run_at_1": "00:00:00"}, "run_at",
         "in the past"),
        ({"kind": "once"}, "run_at", "needs the instant to run at"),
        ({"kind": "cron", "cron_expression": "* * * * *", "timezone": "Asia/Seul"}, "timezone",
         "Did you mean Asia/Seoul?"),
        ({"kind": "sometimes"}, "kind", "Kind: Select a valid choice."),
        ({}, "kind", "This field is required."),
    ],
)  # fmt: skip
def test_preview_of_bad_input_names_the_field(admin_client, fields, field, message):
    data = preview(admin_client, **{"timezone": "UTC", **fields})

    assert data["fires"] == [] and data["description"] == ""
    assert any(message in error for error in data["errors"][field]), data["errors"]


def test_preview_of_a_saved_schedule_keeps_its_interval_grid(admin_client, job):
    anchor = timezone.now().replace(microsecond=0) - timedelta(minutes=7, seconds=30)
    schedule = schedule_create(job=job, kind="interval", interval_every=10, start_at=anchor)

    data = preview(
        admin_client,
        schedule=str(schedule.pk),
        kind="interval",
        interval_every="5",
        interval_unit="minutes",
        timezone="UTC",
    )

    first = fire_instants(data)[0]
    assert (first - anchor) % timedelta(minutes=5) == timedelta(0)  # on the stored grid
    schedule.refresh_from_db()
    assert schedule.interval_every == 10  # a preview saves nothing


@pytest.mark.parametrize("schedule", ["999999", "99999999999999999999999", "abc"])
def test_preview_of_a_schedule_that_is_not_there_is_not_found(admin_client, schedule):
    response = admin_client.get(PREVIEW, {"schedule": schedule, "kind": "cron", "timezone": "UTC"})

    assert response.status_code == 404 and "schedule" in response.json()["errors"]


# --- the schedule page: the kind's fields, after a delay ---------------------------------------


def test_the_page_offers_after_a_delay_and_the_fields_of_each_kind(admin_client, job):
    page = admin_client.get(ADD).content.decode()

    assert 'name="delay"' in page and '<option value="delay">Once, after a delay</option>' in page
    assert "data-kind-fields=" in page and "batchjobs/schedule_form.js" in page


def test_a_schedule_after_a_delay_fires_that_long_after_the_save(admin_client, job):
    before = timezone.now()

    response = admin_client.post(ADD, schedule_form_data(job, kind="delay", delay="600"))

    assert response.status_code == 302, form_errors(response)
    schedule = BatchSchedule.objects.get()
    assert (schedule.kind, schedule.delay_seconds, schedule.cron_expression) == ("once", 600, "")
    assert (
        before + timedelta(seconds=600)
        <= schedule.next_fire_at
        <= timezone.now() + timedelta(seconds=600)
    )
    # Shown again as a delay; saved again unchanged, it keeps its instant.
    page = admin_client.get(change_url(schedule))
    assert page.context["adminform"].form.initial["kind"] == "delay"
    again = admin_client.post(
        change_url(schedule), schedule_form_data(job, kind="delay", delay="600", description="x")
    )
    assert again.status_code == 302, form_errors(again)
    schedule.refresh_from_db()
    assert schedule.description == "x" and schedule.run_at == schedule.next_fire_at
    assert schedule.run_at <= timezone.now() + timedelta(seconds=600)


def test_switching_a_cron_schedule_to_every_n_units_drops_the_old_cron(admin_client, job):
    schedule = schedule_create(job=job, kind="cron", cron_expression="30 2 * * *")

    # The old cron is still in its (hidden) box when the form is sent, even a bad one.
    response = admin_client.post(
        change_url(schedule),
        schedule_form_data(job, kind="interval", interval_every="5", cron_expression="61 * * * *"),
    )

    assert response.status_code == 302, form_errors(response)
    schedule.refresh_from_db()
    assert (schedule.kind, schedule.interval_every, schedule.cron_expression) == (
        "interval", 5, "")  # fmt: skip
    assert schedule.summary == "every 5 minutes"


# --- the zone picker's suggestions --------------------------------------------------------------

ZONES = reverse("admin:batchjobs_zone_suggestions")


def test_the_zone_picker_suggests_asia_seoul_for_a_typo(staff_client):
    client = staff_client()  # any operator: the preferences page has a zone box too

    typo = client.get(ZONES, {"q": "Asia/Seul"}).json()["zones"]
    city = client.get(ZONES, {"q": "seoul"}).json()["zones"]
    long = client.get(ZONES, {"q": "x" * 10_000})

    assert typo == [{"name": "Asia/Seoul", "offset": "+09:00"}]
    assert [zone["name"] for zone in city] == ["Asia/Seoul"]
    assert long.status_code == 200 and long.json()["zones"] == []


def test_the_zone_picker_needs_a_signed_in_operator(client):
    response = client.get(ZONES, {"q": "Asia"})

    assert response.status_code == 302 and "/login/" in response["Location"]


def test_preview_in_korean_names_the_field_and_counts_the_interval(admin_client):
    korean = {"HTTP_ACCEPT_LANGUAGE": "ko"}

    bad = admin_client.get(
        PREVIEW, {"kind": "cron", "cron_expression": "61 * * * *", "timezone": "UTC"}, **korean
    ).json()
    every = admin_client.get(
        PREVIEW,
        {"kind": "interval", "interval_every": "1", "interval_unit": "minutes", "timezone": "UTC"},
        **korean,
    ).json()

    assert bad["errors"]["cron_expression"] == [
        "Cron 표현식: 분 필드: 61은(는) 범위 0–59를 벗어났습니다."
    ]
    assert every["description"] == "1분마다"
    assert every["fires"][1]["relative"] == "1분 후"
