"""The upcoming runs across jobs: every fire of every live schedule in a window, bounded,
calendars' exclusions marked, grouped by day and hour in the reader's zone, filtered by tag."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from batchjobs.models import BatchJob, BatchSchedule, Calendar, JobTag
from batchjobs.selectors.timeline import (
    FIRES_PER_SCHEDULE,
    by_day_and_hour,
    upcoming_runs,
)
from batchjobs.services.schedules import schedule_create
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db

# A Monday, 22:30 UTC (07:30 the next day in Seoul).
START = datetime(2027, 3, 1, 22, 30, tzinfo=UTC)
DAY = timedelta(hours=24)


def cron(job: BatchJob, expression: str, **fields) -> BatchSchedule:
    return schedule_create(
        job=job, kind="cron", cron_expression=expression, timezone="UTC", **fields
    )


def test_every_fire_of_every_live_schedule_in_the_window_earliest_first():
    # given two jobs firing in the window, and schedules that must not show
    nightly, hourly = handler_job("noop", name="nightly"), handler_job("noop", name="hourly")
    cron(nightly, "0 2 * * *")
    cron(hourly, "15 */6 * * *")
    cron(handler_job("noop", name="paused"), "0 * * * *", paused=True)
    cron(handler_job("noop", name="disabled", enabled=False), "0 * * * *")
    cron(handler_job("noop", name="yearly"), "0 0 1 1 *")  # next fire past the window

    # when
    runs = upcoming_runs(window=DAY, start=START)

    # then
    assert [(f.schedule.job.name, f"{f.at:%d %H:%M}") for f in runs.fires] == [
        ("hourly", "02 00:15"), ("nightly", "02 02:00"), ("hourly", "02 06:15"),
        ("hourly", "02 12:15"), ("hourly", "02 18:15"),
    ]  # fmt: skip
    assert [(job.job_name, len(job.fires)) for job in runs.jobs] == [("hourly", 4), ("nightly", 1)]
    assert not (runs.capped_schedules or runs.capped_in_all or runs.capped_schedules_count)
    assert runs.end == START + DAY


def test_grouped_by_day_and_hour_in_the_readers_zone():
    cron(handler_job("noop", name="a"), "15 */6 * * *")
    runs = upcoming_runs(window=DAY, start=START)

    days = by_day_and_hour(runs.fires, ZoneInfo("Asia/Seoul"))

    assert [(d.day.isoformat(), [f"{h.hour:%H:%M}" for h in d.hours]) for d in days] == [
        ("2027-03-02", ["09:00", "15:00", "21:00"]), ("2027-03-03", ["03:00"]),
    ]  # fmt: skip


def test_a_schedule_that_fires_too_often_is_capped_and_said_to_be():
    busy = cron(handler_job("noop", name="busy"), "* * * * *")
    cron(handler_job("noop", name="calm"), "0 3 * * *")

    runs = upcoming_runs(window=DAY, start=START)

    assert [s.pk for s in runs.capped_schedules] == [busy.pk]
    by_job = {job.job_name: job for job in runs.jobs}
    assert len(by_job["busy"].fires) == FIRES_PER_SCHEDULE and by_job["busy"].capped
    assert len(by_job["calm"].fires) == 1 and not by_job["calm"].capped


def test_fires_a_calendar_excludes_are_listed_marked_with_the_reason():
    closed = Calendar.objects.create(name="closed", excluded_dates=["2027-03-02"])
    schedule = cron(handler_job("noop", name="daily"), "0 9 * * *", calendars=[closed])

    runs = upcoming_runs(window=2 * DAY, start=START)

    assert [(f"{f.at:%d}", f.excluded) for f in runs.fires] == [("02", True), ("03", False)]
    assert "2027-03-02 is excluded by calendar 'closed'" in runs.fires[0].reason
    assert runs.fires[0].schedule.pk == schedule.pk


def test_only_the_jobs_with_the_tag():
    tagged, untagged = handler_job("noop", name="tagged"), handler_job("noop", name="plain")
    tagged.tags.add(JobTag.objects.create(name="nightly"))
    cron(tagged, "0 1 * * *")
    cron(untagged, "0 1 * * *")

    assert [j.job_name for j in upcoming_runs(window=DAY, start=START, tag="nightly").jobs] == [
        "tagged"
    ]
    assert upcoming_runs(window=DAY, start=START, tag="nobody").fires == []


def test_a_schedule_stored_behind_validations_back_is_named_and_the_others_listed():
    bad = cron(handler_job("noop", name="bad"), "0 1 * * *")
    cron(handler_job("noop", name="good"), "0 1 * * *")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE batchjobs_batchschedule SET timezone = 'Nowhere/Land' WHERE id = %s", [bad.pk]
        )

    runs = upcoming_runs(window=DAY, start=START)

    assert [job.job_name for job in runs.jobs] == ["good"]
    assert [(schedule.pk, "Nowhere/Land" in why) for schedule, why in runs.unreadable] == [
        (bad.pk, True)
    ]
