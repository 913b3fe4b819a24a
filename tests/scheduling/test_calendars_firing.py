"""Beat with a Korean calendar: a daily 02:00 Asia/Seoul schedule over 설날 2027 (the lunar new
year, 02-06..08, and its substitute holiday 02-09), fired day by day with an explicit clock."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from batchjobs.models import BatchLog, BatchSchedule, CalendarPolicy, ScheduleOccurrence
from batchjobs.scheduling.firing import schedules_fire_due
from batchjobs.services.calendars import calendar_create
from batchjobs.services.schedules import schedule_create
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db

SEOUL = ZoneInfo("Asia/Seoul")


def seoul(day: int) -> datetime:
    return datetime(2027, 2, day, 2, 0, tzinfo=SEOUL).astimezone(UTC)


def nightly_through_seollal(policy: str) -> BatchSchedule:
    korea = calendar_create(name="KR", country="KR")
    schedule = schedule_create(
        job=handler_job("noop"), kind="cron", cron_expression="0 2 * * *",
        timezone="Asia/Seoul", calendars=[korea], calendar_policy=policy,
    )  # fmt: skip
    BatchSchedule.objects.filter(pk=schedule.pk).update(next_fire_at=seoul(5))
    for day in range(5, 11):  # beat on time every night, 2027-02-05..10
        while schedules_fire_due(now=seoul(day) + timedelta(seconds=1)).schedules:
            pass
    return schedule


def outcomes(schedule: BatchSchedule) -> dict[int, str]:
    return {
        occurrence.scheduled_for.astimezone(SEOUL).day: occurrence.outcome
        for occurrence in ScheduleOccurrence.objects.filter(schedule=schedule)
    }


def test_skip_excludes_seollal_and_its_substitute_holiday():
    schedule = nightly_through_seollal(CalendarPolicy.SKIP)
    assert outcomes(schedule) == {5: "fired", 6: "excluded", 7: "excluded", 8: "excluded",
                                  9: "excluded", 10: "fired"}  # fmt: skip
    runs = BatchLog.objects.filter(schedule=schedule).order_by("scheduled_for")
    assert [run.scheduled_for for run in runs] == [seoul(5), seoul(10)]
    reason = ScheduleOccurrence.objects.get(schedule=schedule, scheduled_for=seoul(9)).reason
    assert (
        reason == "2027-02-09 is excluded by calendar 'KR': Alternative holiday for Korean New Year"
    )


def test_move_runs_seollals_fires_on_the_next_working_day_at_two():
    schedule = nightly_through_seollal(CalendarPolicy.MOVE)
    moved = ScheduleOccurrence.objects.get(schedule=schedule, scheduled_for=seoul(6))
    assert moved.outcome == "moved"
    assert moved.due_at == seoul(10)  # 2027-02-10 02:00 KST
    assert outcomes(schedule)[10] == "fired"
