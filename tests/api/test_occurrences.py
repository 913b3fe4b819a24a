"""GET /api/v1/schedules/{id}/occurrences: a schedule's account, by window and outcome."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from batchjobs.models import BatchSchedule, OccurrenceOutcome
from batchjobs.models.clock import database_now
from batchjobs.scheduling.occurrences import Occurrence, occurrences_record
from batchjobs.services.schedules import schedule_create
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def schedule() -> BatchSchedule:
    schedule = schedule_create(job=handler_job("noop"), kind="interval", interval_every=1)
    skipped = OccurrenceOutcome.MISSED_SKIPPED
    occurrences_record(
        [Occurrence(schedule.pk, T0, OccurrenceOutcome.FIRED),
         Occurrence(schedule.pk, T0 + MINUTE, skipped, "misfire skip", fires=3,
                    last_scheduled_for=T0 + 3 * MINUTE),
         Occurrence(schedule.pk, T0 + 4 * MINUTE, OccurrenceOutcome.PAUSED, "paused")],
        now=database_now(),
    )  # fmt: skip
    return schedule


def url(schedule) -> str:
    return reverse("api:schedule-occurrences", args=[schedule.pk])


def test_the_account_lists_the_records_latest_first_and_counts_fires(api, schedule):
    response = api("reader").get(url(schedule))

    assert response.status_code == 200, response.json()
    body = response.json()
    assert [row["outcome"] for row in body["results"]] == ["paused", "missed_skipped", "fired"]
    run = body["results"][1]
    assert (run["fires"], run["reason"]) == (3, "misfire skip")
    assert body["account"]["fired"] == 1 and body["account"]["missed_skipped"] == 3
    assert sum(body["account"].values()) == 5


def test_the_window_and_outcomes_filter(api, schedule):
    client = api("reader")
    # a run of fires overlapping the window is in it whole
    windowed = client.get(url(schedule), {"since": (T0 + 2 * MINUTE).isoformat(),
                                          "until": (T0 + 3 * MINUTE).isoformat()})  # fmt: skip
    filtered = client.get(url(schedule), {"outcome": ["fired", "paused"]})

    assert [row["outcome"] for row in windowed.json()["results"]] == ["missed_skipped"]
    assert [row["outcome"] for row in filtered.json()["results"]] == ["paused", "fired"]


@pytest.mark.parametrize(
    ("query", "field"),
    [({"outcome": "lost"}, "outcome"), ({"since": "yesterday"}, "since"),
     ({"since": "2026-06-02T00:00:00Z", "until": "2026-06-01T00:00:00Z"}, "until")],
)  # fmt: skip
def test_bad_filters_are_refused_naming_the_field(api, schedule, query, field):
    response = api("reader").get(url(schedule), query)

    assert response.status_code == 400
    assert field in str(response.json())


def test_an_unknown_schedule_is_not_found(api):
    response = api("reader").get(reverse("api:schedule-occurrences", args=[999_999]))
    assert response.status_code == 404
