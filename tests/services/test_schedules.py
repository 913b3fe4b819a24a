from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from batchjobs.errors import InvalidInput
from batchjobs.models import BatchSchedule
from batchjobs.models.clock import database_now
from batchjobs.services.schedules import (
    cron_describe,
    schedule_create,
    schedule_pause,
    schedule_preview,
    schedule_resume,
    schedule_update,
)
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"kind": "cron", "cron_expression": "61 * * * *"}, "cron_expression", "out of range 0–59"),
        ({"kind": "cron", "cron_expression": "* * *"}, "cron_expression", "5 fields"),
        ({"kind": "cron", "cron_expression": ""}, "cron_expression", "5 fields"),
        (
            {"kind": "cron", "cron_expression": "0 * * * *", "timezone": "Mars/Olympus"},
            "timezone",
            "Unknown time zone",
        ),
        ({"kind": "interval", "interval_every": 0}, "interval_every", "more than 0"),
        ({"kind": "interval"}, "interval_every", "more than 0"),  # schedule_interval_positive
        ({"kind": "interval", "interval_every": 2**31 - 1, "interval_unit": "hours"},
         "interval_every", "At most 876000 hours"),
        ({"kind": "interval", "interval_every": 36501, "interval_unit": "days"},
         "interval_every", "At most 36500 days"),
        ({"kind": "interval", "interval_every": 2**31, "interval_unit": "seconds"},
         "interval_every", "between 1 and"),
        ({"kind": "interval", "interval_every": float("nan")}, "interval_every", "finite"),
        ({"kind": "interval", "interval_every": float("inf")}, "interval_every", "finite"),
        ({"kind": "interval", "interval_every": 5, "max_runs": 0}, "max_runs", "between 1 and"),
        ({"kind": "interval", "interval_every": 5, "jitter_seconds": 86401}, "jitter_seconds",
         "between 0 and 86,400"),
        ({"kind": "interval", "interval_every": 5, "catch_up_max": 10_001}, "catch_up_max",
         "between 0 and"),
        ({"kind": "interval", "interval_every": 5, "misfire_grace_seconds": -1},
         "misfire_grace_seconds", "between 0 and"),
        ({"kind": "interval", "interval_every": 5, "catch_up_window_seconds": 10**12},
         "catch_up_window_seconds", "between 0 and"),
        ({"kind": "cron", "cron_expression": "* * 31 2 *"}, "cron_expression",
         "Never fires: day 31 does not occur in February"),
        ({"kind": "cron", "cron_expression": "0 0 31 4 *"}, "cron_expression",
         "does not occur in April"),
        ({"kind": "cron", "cron_expression": "0 0 0 30 2 *"}, "cron_expression", "Never fires"),
        (
            {
                "kind": "interval",
                "interval_every": 5,
                "start_at": datetime(2026, 1, 2, tzinfo=UTC),
                "end_at": datetime(2026, 1, 1, tzinfo=UTC),
            },
            "end_at",
            "after the start",
        ),
        ({"kind": "once"}, "run_at", "needs the instant"),
        ({"kind": "once", "run_at": datetime(2020, 1, 1, tzinfo=UTC)}, "run_at", "in the past"),
        ({"kind": "interval", "interval_every": 5, "params": [1]}, "params", "JSON object"),
        ({"kind": "interval", "interval_every": 5, "colour": "red"}, "colour", "Unknown field"),
        ({"kind": "weekly"}, "kind", "not a valid choice"),
    ],
)  # fmt: skip
def test_bad_schedule_input_names_the_field_and_saves_nothing(fields, field, message):
    with pytest.raises(InvalidInput) as raised:
        schedule_create(job=handler_job("noop"), **fields)
    assert any(message in text for text in raised.value.field_errors.get(field, [])), (
        raised.value.field_errors
    )
    assert "__all__" not in raised.value.field_errors  # never a constraint's name instead
    assert not BatchSchedule.objects.exists()


@pytest.mark.parametrize("delay", [-3, float("nan"), float("inf"), 10 * 365 * 86400 + 1, True])
def test_bad_delay_is_refused(delay):
    with pytest.raises(InvalidInput) as raised:
        schedule_create(job=handler_job("noop"), delay_seconds=delay)
    assert "delay_seconds" in raised.value.field_errors
    assert not BatchSchedule.objects.exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "cron", "cron_expression": "0 0 29 2 *"},  # every fourth year
        {"kind": "cron", "cron_expression": "0 0 31 2 1"},  # day 31 OR a Monday: Mondays
        {"kind": "cron", "cron_expression": "0 0 30,31 2,4 *"},  # 30 April
        {"kind": "interval", "interval_every": 36500, "interval_unit": "days"},
        {"kind": "interval", "interval_every": 2**31 - 1, "interval_unit": "seconds"},
    ],
)
def test_rare_but_real_timings_are_accepted(fields):
    schedule = schedule_create(job=handler_job("noop"), **fields)

    assert schedule.next_fire_at is not None


def test_a_fire_past_year_9999_finishes_the_schedule_instead_of_raising():
    job = handler_job("noop")
    schedule = schedule_create(
        job=job,
        kind="once",
        run_at=datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
        jitter_seconds=86400,
    )

    assert schedule.next_fire_at is None
    assert schedule_preview(schedule=schedule) == []


def test_a_past_once_schedule_runs_now_only_when_asked():
    job = handler_job("noop")
    schedule = schedule_create(
        job=job, kind="once", run_at=datetime(2020, 1, 1, tzinfo=UTC), run_now_if_past=True
    )
    assert abs((schedule.next_fire_at - database_now()).total_seconds()) < 5


def test_immediately_and_after_a_delay():
    job = handler_job("noop")
    now = database_now()
    immediate = schedule_create(job=job, delay_seconds=0)
    later = schedule_create(job=job, delay_seconds=3600)
    assert abs((immediate.next_fire_at - now).total_seconds()) < 5
    assert abs((later.next_fire_at - now - timedelta(hours=1)).total_seconds()) < 5


def test_interval_is_anchored_at_creation_and_edits_keep_the_grid():
    job = handler_job("noop")
    schedule = schedule_create(job=job, kind="interval", interval_every=10, interval_unit="minutes")
    anchor = schedule.start_at
    assert schedule.next_fire_at == anchor
    schedule_update(schedule=schedule, interval_every=15)
    assert (schedule.next_fire_at - anchor) % timedelta(minutes=15) == timedelta(0)
    assert schedule.next_fire_at > database_now() - timedelta(seconds=1)


def test_cron_next_fire_in_zone():
    job = handler_job("noop")
    schedule = schedule_create(
        job=job, kind="cron", cron_expression="30 2 * * *", timezone="Europe/Berlin"
    )
    local = schedule.next_fire_at.astimezone(ZoneInfo("Europe/Berlin"))
    assert (local.hour, local.minute) == (2, 30)


def test_editing_only_the_description_keeps_next_fire_at():
    schedule = schedule_create(job=handler_job("noop"), kind="cron", cron_expression="0 * * * *")
    before = schedule.next_fire_at
    BatchSchedule.objects.filter(pk=schedule.pk).update(next_fire_at=before - timedelta(hours=5))
    schedule.refresh_from_db()
    schedule_update(schedule=schedule, description="renamed")
    assert schedule.next_fire_at == before - timedelta(hours=5)


def test_pause_and_resume_keep_next_fire_at_for_the_misfire_policy():
    schedule = schedule_create(job=handler_job("noop"), kind="cron", cron_expression="0 * * * *")
    before = schedule.next_fire_at
    schedule_pause(schedule=schedule)
    assert BatchSchedule.objects.get(pk=schedule.pk).paused
    schedule_resume(schedule=schedule)
    stored = BatchSchedule.objects.get(pk=schedule.pk)
    assert not stored.paused and stored.next_fire_at == before


def test_jitter_is_fixed_per_schedule_and_within_bounds():
    job = handler_job("noop")
    schedule = schedule_create(
        job=job, kind="cron", cron_expression="0 * * * *", jitter_seconds=600
    )
    nominal = schedule.next_fire_at.replace(minute=0, second=0, microsecond=0)
    offset = schedule.next_fire_at - nominal
    assert timedelta(0) <= offset <= timedelta(seconds=600)
    preview = schedule_preview(schedule=schedule, count=3)
    assert {fire.at - fire.at.replace(minute=0, second=0, microsecond=0) for fire in preview} == {
        offset
    }


def test_preview_marks_dst_transitions():
    schedule = schedule_create(
        job=handler_job("noop"), kind="cron", cron_expression="30 2 * * *", timezone="Europe/Berlin"
    )
    fires = schedule_preview(schedule=schedule, count=5, after=datetime(2026, 3, 27, tzinfo=UTC))
    assert [f"{fire.local:%m-%d %H:%M %z}" for fire in fires] == [
        "03-27 02:30 +0100", "03-28 02:30 +0100", "03-30 02:30 +0200", "03-31 02:30 +0200",
        "04-01 02:30 +0200",
    ]  # fmt: skip
    assert [fire.dst_change for fire in fires] == [False, False, True, False, False]


def test_preview_stops_at_max_runs_and_refuses_bad_counts():
    schedule = schedule_create(
        job=handler_job("noop"),
        kind="interval",
        interval_every=1,
        interval_unit="hours",
        max_runs=3,
    )
    assert len(schedule_preview(schedule=schedule, count=10)) == 3
    with pytest.raises(InvalidInput):
        schedule_preview(schedule=schedule, count=0)


@pytest.mark.parametrize(
    ("expression", "text"),
    [("*/15 * * * *", "Every 15 minutes"), ("0 30 2 * * *", "At 02:30 AM"), ("bad", "")],
)
def test_cron_describe(expression, text):
    assert cron_describe(expression) == text
