"""A job's history against a hand-made set of executions: per-day counts by status, run time
percentiles (interpolated, as percentile_cont) and success rates over 7 and 30 days, the latest
runs; in three queries; the sampled reading used off PostgreSQL gives the same figures."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from batchjobs.models import BatchLog, ExecutionStatus, Trigger
from batchjobs.selectors.job_history import (
    HISTORY_DAYS,
    _durations_sampled,
    job_history,
)
from tests.support.factories import http_job

pytestmark = pytest.mark.django_db

NOW = datetime(2030, 1, 31, 12, 0, tzinfo=UTC)
C, F, S = ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.SKIPPED


def run(job, status: str, *, created: datetime, seconds: float | None = None) -> BatchLog:
    started = created + timedelta(seconds=1)
    execution = BatchLog.objects.create(
        job=job,
        trigger=Trigger.SCHEDULE,
        status=status,
        attempts=1,
        max_attempts=1,
        started_at=started if seconds is not None else None,
        finished_at=started + timedelta(seconds=seconds) if seconds is not None else None,
        error="RuntimeError: boom\nmore" if status == F else "",
    )
    BatchLog.objects.filter(pk=execution.pk).update(created_at=created)
    return execution


@pytest.fixture
def job():
    job = http_job("https://example.com/a")
    today = NOW - timedelta(hours=2)
    three_days_ago, three_weeks_ago = NOW - timedelta(days=3), NOW - timedelta(days=21)
    for minutes, seconds in ((1, 10), (2, 20), (3, 30)):
        run(job, C, created=today + timedelta(minutes=minutes), seconds=seconds)
    run(job, F, created=today + timedelta(minutes=4), seconds=5)
    run(job, C, created=three_days_ago, seconds=40)
    run(job, S, created=three_days_ago + timedelta(minutes=1))
    run(job, C, created=three_weeks_ago, seconds=100)
    run(job, C, created=three_weeks_ago + timedelta(minutes=1), seconds=200)
    run(job, F, created=three_weeks_ago + timedelta(minutes=2), seconds=1)
    run(job, F, created=three_weeks_ago + timedelta(minutes=3), seconds=1)
    run(job, C, created=NOW - timedelta(days=61), seconds=1000)  # before the 30 days
    run(http_job("https://example.com/b"), C, created=today, seconds=999)  # another job's
    return job


def test_counts_percentiles_and_rates_over_7_and_30_days(job, django_assert_num_queries):
    with django_assert_num_queries(3):
        history = job_history(job_id=job.pk, zone=UTC, now=NOW)

    assert len(history.days) == HISTORY_DAYS
    assert (history.days[0].day.isoformat(), history.days[-1].day.isoformat()) == (
        "2030-01-02", "2030-01-31",
    )  # fmt: skip
    counted = {d.day.isoformat(): d.counts for d in history.days if d.total}
    assert counted == {
        "2030-01-10": {C: 2, F: 2},
        "2030-01-28": {C: 1, S: 1},
        "2030-01-31": {C: 3, F: 1},
    }
    week, month = history.windows
    assert (week.days, week.runs, week.ended, week.completed) == (7, 6, 5, 4)
    assert (week.p50, week.p95) == (pytest.approx(25.0), pytest.approx(38.5))
    assert week.success_rate == pytest.approx(0.8)
    assert (month.days, month.runs, month.ended, month.completed) == (30, 10, 9, 6)
    assert (month.p50, month.p95) == (pytest.approx(35.0), pytest.approx(175.0))
    assert month.success_rate == pytest.approx(6 / 9)
    assert len(history.recent) == 10
    assert [r.status for r in history.recent[:2]] == [F, C]  # the latest first
    assert history.recent[0].error_head.startswith("RuntimeError: boom")


def test_days_are_the_operators_calendar_days():
    job = http_job("https://example.com/a")
    # 16:30 UTC on the 30th is already the 31st in Seoul
    run(job, C, created=datetime(2030, 1, 30, 16, 30, tzinfo=UTC), seconds=1)

    seoul = job_history(job_id=job.pk, zone=ZoneInfo("Asia/Seoul"), now=NOW)
    utc = job_history(job_id=job.pk, zone=UTC, now=NOW)

    assert [d.day.day for d in seoul.days if d.total] == [31]
    assert [d.day.day for d in utc.days if d.total] == [30]


def test_the_sampled_reading_gives_the_databases_figures(job):
    history = job_history(job_id=job.pk, zone=UTC, now=NOW)
    starts = [
        datetime(2030, 1, 25, tzinfo=UTC),  # the 7 days' first midnight
        datetime(2030, 1, 2, tzinfo=UTC),  # the 30 days'
    ]
    sampled, cut = _durations_sampled(job.pk, starts)

    assert cut is False
    assert sampled == [(pytest.approx(w.p50), pytest.approx(w.p95)) for w in history.windows]


def test_a_job_that_never_ran_has_empty_figures():
    job = http_job("https://example.com/a")
    history = job_history(job_id=job.pk, zone=UTC, now=NOW)
    assert all(d.total == 0 for d in history.days)
    assert [(w.runs, w.p50, w.p95, w.success_rate) for w in history.windows] == [
        (0, None, None, None), (0, None, None, None),
    ]  # fmt: skip
    assert history.recent == []


def test_percentiles_read_only_the_latest_runs_past_the_bound(job, monkeypatch):
    monkeypatch.setattr("batchjobs.selectors.job_history.DURATION_SAMPLE_LIMIT", 2)

    history = job_history(job_id=job.pk, zone=UTC, now=NOW)

    # the two latest completed runs took 30 s and 20 s; the counts stay exact
    week, month = history.windows
    assert (month.p50, month.p95, month.sampled) == (
        pytest.approx(25.0), pytest.approx(29.5), True,
    )  # fmt: skip
    assert (week.runs, month.runs, month.completed) == (6, 10, 6)
