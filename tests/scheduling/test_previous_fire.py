"""previous_fire_before: the nominal fire before an instant, the start of a run's data interval.

The inverse of next_fire_after, DST rules included (DESIGN.md §4.8)."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchjobs.scheduling.fire_times import (
    Timing,
    fires_between,
    next_fire_after,
    previous_fire_before,
)

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
CRONS = ["0 * * * *", "30 2 * * *", "*/15 * * * *", "5,35 1-3 * * *", "0 0 1 * *",
         "15 10 * * 1-5", "0 12 L * *", "0 9 * * 1#2", "*/20 * * * * *", "0 0 29 2 *"]  # fmt: skip


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def cron(expression, zone, **fields):
    return Timing(kind="cron", cron_expression=expression, timezone=zone, **fields)


def hhmm(instant):
    return f"{instant:%m-%d %H:%M}"


def each_fire_steps_back_to_the_one_before(timing, start, end):
    listed = fires_between(timing, start, end, limit=500)
    assert len(listed) > 2
    for earlier, later in zip(listed, listed[1:], strict=False):
        assert previous_fire_before(timing, later) == earlier
        assert previous_fire_before(timing, later - timedelta(microseconds=1)) == earlier
        assert previous_fire_before(timing, earlier + timedelta(microseconds=1)) == earlier
    return listed


class TestEuropeBerlin:
    # 2026-03-29 02:00 CET -> 03:00 CEST (01:00Z); 2026-10-25 03:00 CEST -> 02:00 CET (01:00Z)
    def test_hourly_steps_back_one_real_hour_through_both_transitions(self):
        hourly = cron("0 * * * *", "Europe/Berlin")
        spring = each_fire_steps_back_to_the_one_before(
            hourly, utc(2026, 3, 28, 22, 30), utc(2026, 3, 29, 22)
        )
        autumn = each_fire_steps_back_to_the_one_before(
            hourly, utc(2026, 10, 24, 21, 30), utc(2026, 10, 25, 23)
        )
        assert len(spring) == 24 and len(autumn) == 26
        # 03:00 CEST's previous fire is 01:00 CET: the hour in between does not exist.
        assert previous_fire_before(hourly, utc(2026, 3, 29, 1)) == utc(2026, 3, 29, 0)
        # The second 02:00 (CET) steps back to the first (CEST), one real hour earlier.
        assert previous_fire_before(hourly, utc(2026, 10, 25, 1)) == utc(2026, 10, 25, 0)

    def test_daily_0230_skips_the_gap_day_and_steps_back_over_the_fold_once(self):
        daily = cron("30 2 * * *", "Europe/Berlin")
        # 03-30 02:30 CEST: the 29th had no 02:30, so the interval reaches back to the 28th.
        assert hhmm(previous_fire_before(daily, utc(2026, 3, 30, 0, 30))) == "03-28 01:30"
        # 10-26 02:30 CET: the 25th fired once, at its first 02:30 (CEST).
        assert hhmm(previous_fire_before(daily, utc(2026, 10, 26, 1, 30))) == "10-25 00:30"

    def test_daily_0230_other_policies_shift_and_both(self):
        shifted = cron("30 2 * * *", "Europe/Berlin", dst_gap_policy="shift")
        both = cron("30 2 * * *", "Europe/Berlin", dst_fold_policy="both")
        assert hhmm(previous_fire_before(shifted, utc(2026, 3, 30, 0, 30))) == "03-29 01:00"
        assert hhmm(previous_fire_before(both, utc(2026, 10, 26, 1, 30))) == "10-25 01:30"
        assert hhmm(previous_fire_before(both, utc(2026, 10, 25, 1, 30))) == "10-25 00:30"

    def test_every_15_minutes_through_the_transitions(self):
        quarter = cron("*/15 * * * *", "Europe/Berlin")
        each_fire_steps_back_to_the_one_before(
            quarter, utc(2026, 3, 29, 0, 20), utc(2026, 3, 29, 1, 40)
        )
        each_fire_steps_back_to_the_one_before(
            quarter, utc(2026, 10, 24, 23, 20), utc(2026, 10, 25, 1, 40)
        )
        assert previous_fire_before(quarter, utc(2026, 3, 29, 1)) == utc(2026, 3, 29, 0, 45)


class TestAmericaNewYork:
    # 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z); 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z)
    def test_hourly(self):
        hourly = cron("0 * * * *", "America/New_York")
        each_fire_steps_back_to_the_one_before(hourly, utc(2026, 3, 8, 4), utc(2026, 3, 9, 4))
        each_fire_steps_back_to_the_one_before(hourly, utc(2026, 11, 1, 3), utc(2026, 11, 2, 5))
        assert previous_fire_before(hourly, utc(2026, 3, 8, 7)) == utc(2026, 3, 8, 6)
        assert previous_fire_before(hourly, utc(2026, 11, 1, 6)) == utc(2026, 11, 1, 5)

    def test_daily_in_the_gap_and_the_fold(self):
        gap = cron("30 2 * * *", "America/New_York")
        fold = cron("30 1 * * *", "America/New_York")
        assert hhmm(previous_fire_before(gap, utc(2026, 3, 9, 6, 30))) == "03-07 07:30"
        assert hhmm(previous_fire_before(fold, utc(2026, 11, 2, 6, 30))) == "11-01 05:30"

    def test_weekdays_step_back_over_the_weekend(self):
        weekdays = cron("15 10 * * 1-5", "America/New_York")
        monday = datetime(2026, 3, 9, 10, 15, tzinfo=UTC) + timedelta(hours=4)  # EDT
        friday = previous_fire_before(weekdays, monday)
        assert friday == utc(2026, 3, 6, 15, 15)  # EST, before the switch


class TestIntervals:
    def test_anchored_grid_is_exact(self):
        anchor = utc(2026, 1, 1, 0, 0, 7)
        every_7_minutes = Timing(
            kind="interval", interval_every=7, interval_unit="minutes", start_at=anchor
        )
        on_grid = anchor + timedelta(minutes=7 * 1000)
        assert previous_fire_before(every_7_minutes, on_grid) == on_grid - timedelta(minutes=7)
        assert previous_fire_before(every_7_minutes, on_grid + timedelta(microseconds=1)) == on_grid
        assert previous_fire_before(every_7_minutes, anchor + timedelta(seconds=1)) == anchor

    def test_none_at_or_before_the_anchor(self):
        anchor = utc(2026, 1, 1)
        hourly = Timing(kind="interval", interval_every=1, interval_unit="hours", start_at=anchor)
        assert previous_fire_before(hourly, anchor) is None
        assert previous_fire_before(hourly, anchor - timedelta(days=3)) is None

    def test_without_start_at_the_grid_starts_in_2000_as_the_forward_math(self):
        every_3_hours = Timing(kind="interval", interval_every=3, interval_unit="hours")
        assert previous_fire_before(every_3_hours, utc(2026, 5, 5, 10)) == utc(2026, 5, 5, 9)
        assert previous_fire_before(every_3_hours, utc(2000, 1, 1)) is None

    def test_days_keep_the_local_time_across_dst(self):
        anchor = datetime(2026, 3, 1, 1, 30, tzinfo=UTC)  # 02:30 CET
        daily = Timing(
            kind="interval",
            interval_every=1,
            interval_unit="days",
            start_at=anchor,
            timezone="Europe/Berlin",
        )
        # 03-30 02:30 CEST steps back over the 29th, whose 02:30 does not exist.
        assert previous_fire_before(daily, utc(2026, 3, 30, 0, 30)) == utc(2026, 3, 28, 1, 30)
        each_fire_steps_back_to_the_one_before(daily, anchor, utc(2026, 4, 10))
        assert previous_fire_before(daily, anchor) is None


class TestBounds:
    def test_once_has_no_previous_fire(self):
        once = Timing(kind="once", run_at=utc(2026, 5, 1))
        assert previous_fire_before(once, utc(2027, 1, 1)) is None

    def test_nothing_before_start_at(self):
        start = utc(2026, 6, 1, 12, 30)
        hourly = cron("0 * * * *", "UTC", start_at=start)
        assert previous_fire_before(hourly, utc(2026, 6, 1, 13)) is None
        assert previous_fire_before(hourly, utc(2026, 6, 1, 14)) == utc(2026, 6, 1, 13)
        assert previous_fire_before(hourly, utc(2026, 1, 1)) is None

    def test_after_end_at_the_last_fire_is_the_one_at_or_before_the_end(self):
        hourly = cron("0 * * * *", "UTC", end_at=utc(2026, 6, 1, 13))
        assert previous_fire_before(hourly, utc(2026, 9, 1)) == utc(2026, 6, 1, 13)

    def test_sparse_expressions_are_found_years_back(self):
        leap_day = cron("0 0 29 2 *", "UTC")
        assert previous_fire_before(leap_day, utc(2027, 6, 1)) == utc(2024, 2, 29)
        yearly = cron("0 0 1 1 *", "UTC", start_at=utc(1990, 1, 1))
        assert previous_fire_before(yearly, utc(2026, 1, 1)) == utc(2025, 1, 1)
        assert previous_fire_before(yearly, utc(1990, 1, 1, 0, 0, 1)) == utc(1990, 1, 1)

    @pytest.mark.parametrize(
        "timing",
        [
            cron("0 0 31 2 *", "UTC"),  # never fires (stored behind validation's back)
            cron("0 0 1 1 *", "UTC"),
            Timing(kind="interval", interval_every=1, interval_unit="days"),
        ],
    )
    def test_the_start_of_the_calendar_is_none_not_an_overflow(self, timing):
        assert previous_fire_before(timing, utc(1, 1, 1, 0, 30)) is None


# --- properties -------------------------------------------------------------------------

instants = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=200, deadline=None)
@given(
    expression=st.sampled_from(CRONS),
    zone=st.sampled_from(ZONES),
    instant=instants,
    fold=st.sampled_from(["first", "both"]),
    gap=st.sampled_from(["skip", "shift"]),
)
def test_cron_previous_fire_is_the_one_next_fire_after_steps_from(
    expression, zone, instant, fold, gap
):
    timing = cron(expression, zone, dst_fold_policy=fold, dst_gap_policy=gap)
    previous = previous_fire_before(timing, instant)
    assert previous is not None and previous < instant
    following = next_fire_after(timing, previous)
    assert following is not None and following >= instant  # nothing between them


@settings(max_examples=200, deadline=None)
@given(
    every=st.integers(min_value=1, max_value=10_000),
    unit=st.sampled_from(["seconds", "minutes", "hours", "days"]),
    zone=st.sampled_from(ZONES),
    anchor=instants,
    instant=instants,
)
def test_interval_previous_fire_is_the_one_next_fire_after_steps_from(
    every, unit, zone, anchor, instant
):
    timing = Timing(
        kind="interval", interval_every=every, interval_unit=unit, start_at=anchor, timezone=zone
    )
    previous = previous_fire_before(timing, instant)
    first = next_fire_after(timing, anchor - timedelta(microseconds=1))
    if first is None or instant <= first:
        assert previous is None
        return
    assert previous is not None and first <= previous < instant
    following = next_fire_after(timing, previous)
    assert following is None or following >= instant
