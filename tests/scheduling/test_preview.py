"""The preview marks the fires a schedule's calendars exclude or move, and lists them."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from batchjobs.services.calendars import calendar_create
from batchjobs.services.schedules import schedule_create, schedule_preview
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db

SEOUL = ZoneInfo("Asia/Seoul")
# 2027-02-04 03:00 KST: the preview starts with the 02:00 fire of 2027-02-05.
AFTER = datetime(2027, 2, 4, 3, 0, tzinfo=SEOUL).astimezone(UTC)


def daily_at_two(policy: str, **fields):
    korea = calendar_create(name="KR", country="KR")
    return schedule_create(job=handler_job("noop"), kind="cron", cron_expression="0 2 * * *",
                           timezone="Asia/Seoul", calendars=[korea], calendar_policy=policy,
                           **fields)  # fmt: skip


def test_skip_lists_the_excluded_fires_marked():
    fires = schedule_preview(schedule=daily_at_two("skip"), count=7, after=AFTER)
    marks = [(f.local.day, f.excluded, f.moved_to) for f in fires]
    assert marks == [(5, False, None), (6, True, None), (7, True, None), (8, True, None),
                     (9, True, None), (10, False, None), (11, False, None)]  # fmt: skip
    assert fires[4].reason == "2027-02-09 is excluded by calendar 'KR': " + (
        "Alternative holiday for Korean New Year"
    )


def test_move_shows_where_each_excluded_fire_goes():
    fires = schedule_preview(schedule=daily_at_two("move"), count=3, after=AFTER)
    assert fires[1].excluded
    assert fires[1].moved_to == datetime(2027, 2, 10, 2, 0, tzinfo=SEOUL)
    assert not fires[0].excluded and fires[0].moved_to is None


def test_excluded_fires_do_not_count_among_the_runs_left():
    fires = schedule_preview(schedule=daily_at_two("skip", max_runs=2), count=10, after=AFTER)
    assert [(f.local.day, f.excluded) for f in fires] == [
        (5, False), (6, True), (7, True), (8, True), (9, True), (10, False)
    ]  # fmt: skip
