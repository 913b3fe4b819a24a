"""Schedule math: properties (hypothesis) and exact DST fire lists (DESIGN.md §4.8)."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from batchjobs.rules.cron import croniter_order
from batchjobs.scheduling.fire_times import Timing, fires_between, jittered, next_fire_after

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
CRONS = ["0 * * * *", "30 2 * * *", "*/15 * * * *", "5,35 1-3 * * *", "0 0 1 * *",
         "15 10 * * 1-5", "0 12 L * *", "0 9 * * 1#2", "*/20 * * * * *"]  # fmt: skip


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fires(expression, zone, start, end, **policies):
    timing = Timing(kind="cron", cron_expression=expression, timezone=zone, **policies)
    return fires_between(timing, start - timedelta(microseconds=1), end, limit=500)


def hhmm(instants):
    return [f"{i:%m-%d %H:%M}" for i in instants]


# --- exact lists across both transitions of 2026 --------------------------------------------


class TestEuropeBerlin:
    # 2026-03-29 02:00 CET -> 03:00 CEST (01:00Z); 2026-10-25 03:00 CEST -> 02:00 CET (01:00Z)
    def test_hourly_runs_every_real_hour_23_and_25_times(self):
        spring = fires("0 * * * *", "Europe/Berlin", utc(2026, 3, 28, 23), utc(2026, 3, 29, 21, 59))
        autumn = fires(
            "0 * * * *", "Europe/Berlin", utc(2026, 10, 24, 22), utc(2026, 10, 25, 22, 59)
        )
        assert len(spring) == 23 and len(autumn) == 25
        for day in (spring, autumn):
            assert all(b - a == timedelta(hours=1) for a, b in zip(day, day[1:], strict=False))

    def test_daily_0230_skips_the_gap_and_fires_once_in_the_fold(self):
        spring = fires("30 2 * * *", "Europe/Berlin", utc(2026, 3, 28), utc(2026, 3, 31))
        autumn = fires("30 2 * * *", "Europe/Berlin", utc(2026, 10, 24), utc(2026, 10, 27))
        assert hhmm(spring) == ["03-28 01:30", "03-30 00:30"]
        assert hhmm(autumn) == ["10-24 00:30", "10-25 00:30", "10-26 01:30"]

    def test_daily_0230_other_policies_shift_and_both(self):
        spring = fires(
            "30 2 * * *",
            "Europe/Berlin",
            utc(2026, 3, 28),
            utc(2026, 3, 31),
            dst_gap_policy="shift",
        )
        autumn = fires(
            "30 2 * * *",
            "Europe/Berlin",
            utc(2026, 10, 24),
            utc(2026, 10, 27),
            dst_fold_policy="both",
        )
        assert hhmm(spring) == ["03-28 01:30", "03-29 01:00", "03-30 00:30"]
        assert hhmm(autumn) == ["10-24 00:30", "10-25 00:30", "10-25 01:30", "10-26 01:30"]

    def test_every_15_minutes_has_no_gap_and_no_double(self):
        spring = fires(
            "*/15 * * * *", "Europe/Berlin", utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 30)
        )
        autumn = fires(
            "*/15 * * * *", "Europe/Berlin", utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 1, 30)
        )
        assert hhmm(spring) == [
            "03-29 00:30",
            "03-29 00:45",
            "03-29 01:00",
            "03-29 01:15",
            "03-29 01:30",
        ]
        assert len(autumn) == 9 and len(set(autumn)) == 9
        assert all(b - a == timedelta(minutes=15) for a, b in zip(autumn, autumn[1:], strict=False))


class TestAmericaNewYork:
    # 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z); 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z)
    def test_hourly(self):
        spring = fires("0 * * * *", "America/New_York", utc(2026, 3, 8, 5), utc(2026, 3, 9, 3, 59))
        autumn = fires(
            "0 * * * *", "America/New_York", utc(2026, 11, 1, 4), utc(2026, 11, 2, 4, 59)
        )
        assert len(spring) == 23 and len(autumn) == 25

    def test_daily_0230(self):
        spring = fires("30 2 * * *", "America/New_York", utc(2026, 3, 7), utc(2026, 3, 10))
        # 01:30 occurs twice on 11-01; 02:30 does not, so a 01:30 job shows the fold.
        autumn = fires("30 1 * * *", "America/New_York", utc(2026, 10, 31), utc(2026, 11, 3))
        autumn_both = fires(
            "30 1 * * *",
            "America/New_York",
            utc(2026, 10, 31),
            utc(2026, 11, 3),
            dst_fold_policy="both",
        )
        assert hhmm(spring) == ["03-07 07:30", "03-09 06:30"]
        assert hhmm(autumn) == ["10-31 05:30", "11-01 05:30", "11-02 06:30"]
        assert hhmm(autumn_both) == ["10-31 05:30", "11-01 05:30", "11-01 06:30", "11-02 06:30"]

    def test_every_15_minutes(self):
        spring = fires(
            "*/15 * * * *", "America/New_York", utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 7, 30)
        )
        autumn = fires("*/15 * * * *", "America/New_York", utc(2026, 11, 1, 5), utc(2026, 11, 1, 7))
        assert hhmm(spring) == [
            "03-08 06:30",
            "03-08 06:45",
            "03-08 07:00",
            "03-08 07:15",
            "03-08 07:30",
        ]
        assert len(autumn) == 9
        assert all(b - a == timedelta(minutes=15) for a, b in zip(autumn, autumn[1:], strict=False))


class TestAustraliaLordHowe:
    # A 30-minute shift. 2026-04-05 02:00 +11 -> 01:30 +10:30 (15:00Z on 04-04);
    # 2026-10-04 02:00 +10:30 -> 02:30 +11 (15:30Z on 10-03).
    def test_hourly_fires_at_each_whole_local_hour_that_exists(self):
        autumn = fires("0 * * * *", "Australia/Lord_Howe", utc(2026, 4, 4, 12), utc(2026, 4, 4, 18))
        spring = fires(
            "0 * * * *", "Australia/Lord_Howe", utc(2026, 10, 3, 12), utc(2026, 10, 3, 18)
        )
        # Whole local hours sit at :00 UTC under +11 and at :30 under +10:30; in April 01:30-01:59
        # repeats (no whole hour in it), in October 02:00-02:29 does not exist.
        assert hhmm(autumn) == ["04-04 12:00", "04-04 13:00", "04-04 14:00", "04-04 15:30",
                                "04-04 16:30", "04-04 17:30"]  # fmt: skip
        assert hhmm(spring) == ["10-03 12:30", "10-03 13:30", "10-03 14:30", "10-03 16:00",
                                "10-03 17:00", "10-03 18:00"]  # fmt: skip

    def test_daily_0215_in_the_gap_and_0145_in_the_fold(self):
        gap = fires("15 2 * * *", "Australia/Lord_Howe", utc(2026, 10, 2), utc(2026, 10, 5))
        shifted = fires(
            "15 2 * * *",
            "Australia/Lord_Howe",
            utc(2026, 10, 2),
            utc(2026, 10, 5),
            dst_gap_policy="shift",
        )
        fold = fires("45 1 * * *", "Australia/Lord_Howe", utc(2026, 4, 3), utc(2026, 4, 6))
        fold_both = fires(
            "45 1 * * *",
            "Australia/Lord_Howe",
            utc(2026, 4, 3),
            utc(2026, 4, 6),
            dst_fold_policy="both",
        )
        assert hhmm(gap) == ["10-02 15:45", "10-04 15:15"]
        assert hhmm(shifted) == ["10-02 15:45", "10-03 15:30", "10-04 15:15"]
        assert hhmm(fold) == ["04-03 14:45", "04-04 14:45", "04-05 15:15"]
        assert hhmm(fold_both) == ["04-03 14:45", "04-04 14:45", "04-04 15:15", "04-05 15:15"]

    def test_every_15_minutes(self):
        fold = fires(
            "*/15 * * * *", "Australia/Lord_Howe", utc(2026, 4, 4, 14, 15), utc(2026, 4, 4, 15, 45)
        )
        gap = fires(
            "*/15 * * * *", "Australia/Lord_Howe", utc(2026, 10, 3, 15), utc(2026, 10, 3, 16)
        )
        assert all(b - a == timedelta(minutes=15) for a, b in zip(fold, fold[1:], strict=False))
        assert len(fold) == 7
        assert hhmm(gap) == [
            "10-03 15:00",
            "10-03 15:15",
            "10-03 15:30",
            "10-03 15:45",
            "10-03 16:00",
        ]


# --- properties -------------------------------------------------------------------------


instants = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=150, deadline=None)
@given(expression=st.sampled_from(CRONS), zone=st.sampled_from(ZONES), after=instants)
def test_cron_next_fire_is_strictly_later_and_matches_the_expression_locally(
    expression, zone, after
):
    timing = Timing(kind="cron", cron_expression=expression, timezone=zone)
    fire = next_fire_after(timing, after)
    assert fire is not None and fire > after
    # With the default DST policies every fire is a local time that exists and matches.
    local = fire.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    assert croniter.match(croniter_order(expression), local)
    again = next_fire_after(timing, fire)
    assert again is not None and again > fire


@settings(max_examples=150, deadline=None)
@given(
    every=st.integers(min_value=1, max_value=10_000),
    unit=st.sampled_from(["seconds", "minutes", "hours"]),
    anchor=instants,
    probes=st.lists(instants, min_size=1, max_size=5),
)
def test_intervals_stay_on_the_anchor_grid_whatever_the_probe(every, unit, anchor, probes):
    step = timedelta(**{unit: every})
    timing = Timing(kind="interval", interval_every=every, interval_unit=unit, start_at=anchor)
    for probe in probes:
        fire = next_fire_after(timing, probe)
        assert fire > probe
        assert fire >= anchor
        assert (fire - anchor) % step == timedelta(0)  # on the grid: no drift, ever
        assert fire - step <= max(probe, anchor - step)  # and the first such point


@settings(max_examples=100, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    start=instants,
    span=st.integers(min_value=1, max_value=60 * 24 * 90),
    expression=st.sampled_from(CRONS),
)
def test_fires_stay_inside_start_and_end(zone, start, span, expression):
    end = start + timedelta(minutes=span)
    timing = Timing(
        kind="cron", cron_expression=expression, timezone=zone, start_at=start, end_at=end
    )
    listed = fires_between(timing, start - timedelta(days=400), end + timedelta(days=400), limit=50)
    assert all(start <= fire <= end for fire in listed)
    assert listed == sorted(set(listed))


@settings(max_examples=100, deadline=None)
@given(zone=st.sampled_from(ZONES), after=instants, days=st.integers(min_value=1, max_value=30))
def test_daily_intervals_keep_the_local_time_of_day(zone, after, days):
    anchor = datetime(2024, 1, 1, 2, 30, tzinfo=ZoneInfo(zone)).astimezone(UTC)
    timing = Timing(
        kind="interval",
        interval_every=days,
        interval_unit="days",
        start_at=anchor,
        timezone=zone,
        dst_gap_policy="skip",
    )
    fire = next_fire_after(timing, after)
    local = fire.astimezone(ZoneInfo(zone))
    assert fire > after
    assert (local.hour, local.minute) == (2, 30)
    assert (local.date() - datetime(2024, 1, 1).date()).days % days == 0


def test_once_fires_at_run_at_only():
    run_at = utc(2026, 5, 1, 8)
    timing = Timing(kind="once", run_at=run_at)
    assert next_fire_after(timing, run_at - timedelta(seconds=1)) == run_at
    assert next_fire_after(timing, run_at) is None


def test_six_field_cron_has_seconds_first():
    listed = fires("*/20 * * * * *", "UTC", utc(2026, 1, 1), utc(2026, 1, 1, 0, 1))
    assert [f"{i:%M:%S}" for i in listed] == ["00:00", "00:20", "00:40", "01:00"]


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe"])
def test_a_whole_year_of_every_15_minutes_never_repeats_or_gaps(zone):
    listed = fires("*/15 * * * *", zone, utc(2026, 1, 1), utc(2027, 1, 1))
    gaps = {b - a for a, b in zip(listed, listed[1:], strict=False)}
    assert gaps == {timedelta(minutes=15)}


# --- the end of the calendar: a schedule finishes, it does not raise (issue #11) -------------

LAST_DAY = utc(9999, 12, 31)


@pytest.mark.parametrize(
    ("timing", "after"),
    [
        (Timing(kind="interval", interval_every=2**31 - 1, interval_unit="hours"), utc(2026, 1, 1)),
        (Timing(kind="interval", interval_every=2**31 - 1, interval_unit="days"), utc(2026, 1, 1)),
        (Timing(kind="interval", interval_every=1, interval_unit="hours",
                start_at=utc(2026, 1, 1)), LAST_DAY + timedelta(hours=23, minutes=30)),
        (Timing(kind="interval", interval_every=1, interval_unit="days"), LAST_DAY),
        (Timing(kind="cron", cron_expression="0 0 1 1 *"), LAST_DAY),
        (Timing(kind="cron", cron_expression="0 * * * *", timezone="Pacific/Kiritimati"),
         LAST_DAY + timedelta(hours=10, minutes=1)),  # local: 10000-01-01
        (Timing(kind="cron", cron_expression="0 0 31 2 *"), utc(2026, 1, 1)),  # never fires
        (Timing(kind="cron", cron_expression="0 0 1 1 *", start_at=datetime.max.replace(
            tzinfo=UTC)), utc(2026, 1, 1)),
    ],
)  # fmt: skip
def test_no_fire_past_year_9999_is_none_not_an_overflow(timing, after):
    assert next_fire_after(timing, after) is None
    assert fires_between(timing, after, datetime.max.replace(tzinfo=UTC), limit=5) == []


def test_the_last_fires_of_the_calendar_are_still_listed():
    daily = Timing(
        kind="interval", interval_every=1, interval_unit="days", start_at=utc(2026, 1, 1)
    )

    listed = fires_between(daily, utc(9999, 12, 29), datetime.max.replace(tzinfo=UTC), limit=5)

    assert listed == [utc(9999, 12, 30), utc(9999, 12, 31)]


def test_jitter_past_year_9999_is_none():
    assert jittered(utc(9999, 12, 31, 23, 59), timedelta(days=1)) is None
    assert jittered(utc(2026, 1, 1), timedelta(days=1)) == utc(2026, 1, 2)
