"""Exclusion calendars as beat reads them: Korea's 2027 holidays (lunar and substitute ones),
business days, custom ranges, subdivisions, and the skip and move policies."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from batchjobs.models import Calendar, CalendarPolicy
from batchjobs.scheduling.calendars import (
    MAX_MOVE_DAYS,
    CalendarDays,
    CalendarUnusable,
    ScheduleCalendars,
    calendar_exclusions,
    schedules_calendars,
)
from batchjobs.services.schedules import schedule_create
from tests.support.factories import handler_job

SEOUL = ZoneInfo("Asia/Seoul")
# Korea's public holidays of 2027 the lunar calendar and the substitute-holiday law make.
KOREA_2027_LUNAR = [date(2027, 2, 6), date(2027, 2, 7), date(2027, 2, 8), date(2027, 5, 13),
                    date(2027, 9, 14), date(2027, 9, 15), date(2027, 9, 16)]  # fmt: skip
KOREA_2027_SUBSTITUTES = [date(2027, 2, 9), date(2027, 5, 3), date(2027, 7, 19),
                          date(2027, 8, 16), date(2027, 10, 4), date(2027, 10, 11),
                          date(2027, 12, 27)]  # fmt: skip


def calendars(*calendars: Calendar, policy: str = CalendarPolicy.SKIP, zone: str = "Asia/Seoul"):
    return ScheduleCalendars(
        timezone=zone, policy=policy, calendars=tuple(CalendarDays.of(c) for c in calendars)
    )


def seoul(day: date, hour: int = 2, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SEOUL).astimezone(UTC)


KOREA = Calendar(name="KR", country="KR")


@pytest.mark.parametrize("day", KOREA_2027_LUNAR + KOREA_2027_SUBSTITUTES)
def test_korea_excludes_its_lunar_and_substitute_holidays_of_2027(day):
    verdict = calendars(KOREA).verdict(seoul(day))
    assert not verdict.allowed
    assert verdict.reason.startswith(f"{day.isoformat()} is excluded by calendar 'KR': ")
    assert verdict.moved_to is None


@pytest.mark.parametrize("substitute", KOREA_2027_SUBSTITUTES)
def test_the_day_after_a_substitute_holiday_is_allowed(substitute):
    assert calendars(KOREA).verdict(seoul(substitute + timedelta(days=1))).allowed


def test_the_reason_names_the_holiday_in_the_deployment_language():
    with translation.override("ko"):
        verdict = calendars(KOREA).verdict(seoul(date(2027, 2, 9)))
    assert verdict.reason == "2027-02-09은(는) 캘린더 'KR'에서 제외된 날입니다: 설날 대체 휴일"
    with translation.override("en"):
        verdict = calendars(KOREA).verdict(seoul(date(2027, 2, 9)))
    assert verdict.reason.endswith("'KR': Alternative holiday for Korean New Year")


def test_a_fire_is_judged_on_its_local_date():
    # 2027-02-05 18:00 UTC is 2027-02-06 03:00 in Seoul (설날 전날): excluded there, not in UTC.
    fire = datetime(2027, 2, 5, 18, 0, tzinfo=UTC)
    assert not calendars(KOREA).verdict(fire).allowed
    assert calendars(KOREA, zone="UTC").verdict(fire).allowed


def test_move_puts_the_fire_at_the_same_local_time_on_the_next_allowed_day():
    # given a daily 02:00 Seoul fire on 설날 전날: 02-06..02-09 are all excluded
    verdict = calendars(KOREA, policy=CalendarPolicy.MOVE).verdict(seoul(date(2027, 2, 6)))
    # then
    assert not verdict.allowed
    assert verdict.moved_to == seoul(date(2027, 2, 10))
    assert "2027-02-06" in verdict.reason


def test_move_across_a_spring_forward_gap_lands_on_the_first_instant_after_it():
    # 02:30 does not exist in Berlin on 2027-03-28 (clocks go 02:00 -> 03:00).
    berlin = ZoneInfo("Europe/Berlin")
    closed = Calendar(name="closed", excluded_dates=["2027-03-27"])
    fire = datetime(2027, 3, 27, 2, 30, tzinfo=berlin)
    verdict = calendars(closed, policy=CalendarPolicy.MOVE, zone="Europe/Berlin").verdict(fire)
    assert verdict.moved_to == datetime(2027, 3, 28, 3, 0, tzinfo=berlin)


def test_move_finds_no_day_in_a_calendar_that_excludes_every_day():
    always = Calendar(name="never", excluded_dates=["2027-01-01..2029-12-31"])
    verdict = calendars(always, policy=CalendarPolicy.MOVE).verdict(seoul(date(2027, 6, 1)))
    assert not verdict.allowed and verdict.moved_to is None
    assert f"no allowed day follows within {MAX_MOVE_DAYS} days" in verdict.reason


def test_move_near_the_end_of_time_finds_no_day_instead_of_overflowing():
    closed = Calendar(name="end", excluded_dates=["9999-12-29..9999-12-31"])
    fire = datetime(9999, 12, 29, 12, 0, tzinfo=UTC)
    verdict = calendars(closed, policy=CalendarPolicy.MOVE, zone="UTC").verdict(fire)
    assert not verdict.allowed and verdict.moved_to is None


def test_business_days_only_excludes_weekends():
    weekdays = Calendar(name="weekdays", business_days_only=True)
    saturday, sunday, monday = date(2027, 1, 9), date(2027, 1, 10), date(2027, 1, 11)
    assert calendars(weekdays).verdict(seoul(saturday)).reason.endswith(": Saturday")
    assert not calendars(weekdays).verdict(seoul(sunday)).allowed
    assert calendars(weekdays).verdict(seoul(monday)).allowed
    # moved from Friday's excluded date to Monday
    closed_friday = Calendar(name="f", business_days_only=True, excluded_dates=["2027-01-08"])
    moved = calendars(closed_friday, policy=CalendarPolicy.MOVE).verdict(seoul(date(2027, 1, 8)))
    assert moved.moved_to == seoul(monday)


def test_custom_dates_and_inclusive_ranges():
    custom = Calendar(name="custom", excluded_dates=["2027-04-01", "2027-08-02..2027-08-06"])
    excluded = [day for day, _why in calendar_exclusions(custom, start=date(2027, 1, 1),
                                                          end=date(2027, 12, 31))]  # fmt: skip
    assert excluded == [date(2027, 4, 1)] + [date(2027, 8, d) for d in range(2, 7)]


def test_a_subdivision_adds_its_own_holidays():
    # Cesar Chavez Day is California's, not the United States'.
    chavez = datetime(2027, 3, 31, 9, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    us = Calendar(name="US", country="US")
    california = Calendar(name="US-CA", country="US", subdivision="CA")
    assert calendars(us, zone="America/Los_Angeles").verdict(chavez).allowed
    assert (
        "Cesar Chavez" in calendars(california, zone="America/Los_Angeles").verdict(chavez).reason
    )


def test_several_calendars_exclude_the_union_of_their_days():
    both = calendars(KOREA, Calendar(name="z", excluded_dates=["2027-03-02"]))
    assert not both.verdict(seoul(date(2027, 3, 1))).allowed  # 삼일절
    assert not both.verdict(seoul(date(2027, 3, 2))).allowed
    assert both.verdict(seoul(date(2027, 3, 3))).allowed


def test_a_calendar_stored_behind_validations_back_refuses_to_judge():
    broken = Calendar(name="broken", excluded_dates=["2027-02-30"])
    with pytest.raises(CalendarUnusable, match="2027-02-30"):
        calendars(broken).verdict(seoul(date(2027, 1, 4)))


@pytest.mark.django_db
def test_schedules_calendars_reads_a_batch_in_one_query():
    # given two schedules sharing a calendar, one with two, one without
    korea = Calendar.objects.create(name="KR", country="KR")
    extra = Calendar.objects.create(name="extra", excluded_dates=["2027-03-02"])
    job = handler_job("noop")
    first, second, plain = (
        schedule_create(job=job, kind="cron", cron_expression="0 2 * * *", timezone="Asia/Seoul")
        for _ in range(3)
    )
    first.calendars.add(korea)
    second.calendars.add(korea, extra)
    rows = [(s.pk, s.timezone, p) for s, p in ((first, "skip"), (second, "move"), (plain, "skip"))]
    # when
    with CaptureQueriesContext(connection) as queries:
        found = schedules_calendars(rows)
    # then
    assert len(queries) == 1
    assert set(found) == {first.pk, second.pk}
    assert [c.name for c in found[second.pk].calendars] == ["KR", "extra"]
    assert found[second.pk].policy == "move"
    assert not found[second.pk].verdict(seoul(date(2027, 3, 2))).allowed
    assert found[first.pk].verdict(seoul(date(2027, 3, 2))).allowed
    assert schedules_calendars([]) == {}
