"""/metrics: Prometheus text computed from the database and the broker at scrape time, for
staff or, with BATCHJOBS_METRICS_PUBLIC, anyone."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.authtoken.models import Token

from batchjobs.execution.publish import executions_publish
from batchjobs.models import (
    AttemptStatus,
    BatchAttempt,
    BatchLog,
    BatchSchedule,
    ExecutionStatus,
    OccurrenceOutcome,
    Trigger,
)
from batchjobs.scheduling.heartbeat import beat_heartbeat_record
from batchjobs.scheduling.occurrences import Occurrence, occurrences_record
from batchjobs.services.schedules import schedule_create
from config.celery_app import app
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db
QUEUE = "metrics-test"


def samples(response) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a Prometheus text response."""
    text = response.content.decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def run(job, status: str, *, hours_ago: float = 1, lag: float | None = None, seconds=None,
        attempts: int = 1, trigger: str = Trigger.SCHEDULE) -> BatchLog:  # fmt: skip
    created = timezone.now() - timedelta(hours=hours_ago)
    execution = BatchLog.objects.create(
        job=job, trigger=trigger, status=status, attempts=attempts, max_attempts=max(3, attempts)
    )
    fields = {"created_at": created}
    if lag is not None:
        fields["scheduled_for"] = created - timedelta(seconds=lag)
    if seconds is not None:
        fields |= {"started_at": created, "finished_at": created + timedelta(seconds=seconds)}
    BatchLog.objects.filter(pk=execution.pk).update(**fields)
    return execution


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user(username="prom", password="x", is_staff=True)


class TestAccess:
    def test_anonymous_and_non_staff_are_refused(self, django_user_model):
        user = django_user_model.objects.create_user(username="viewer", password="x")
        logged_in = Client()
        logged_in.force_login(user)
        token = Token.objects.create(user=user)

        assert Client().get("/metrics").status_code == 403
        assert logged_in.get("/metrics").status_code == 403
        assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Token {token.key}").status_code == 403
        assert Client().get("/metrics", HTTP_AUTHORIZATION="Token nonsense").status_code == 403

    def test_staff_by_session_or_api_token(self, staff):
        session = Client()
        session.force_login(staff)
        token = Token.objects.create(user=staff)

        by_session = session.get("/metrics")
        by_token = Client().get("/metrics", HTTP_AUTHORIZATION=f"Token {token.key}")

        assert by_session.status_code == by_token.status_code == 200
        assert by_session["Content-Type"].startswith("text/plain; version=0.0.4")
        assert "no-cache" in by_session["Cache-Control"]

    def test_public_when_configured(self, settings):
        settings.BATCHJOBS_METRICS_PUBLIC = True
        response = Client().get("/metrics")
        assert response.status_code == 200
        assert "# TYPE batchjobs_executions_24h gauge" in response.content.decode()


def test_figures_come_from_the_last_24_hours_of_executions(staff):
    # given schedule fires 0.2 s, 3 s and 45 s late, a manual run, and old runs out of the window
    job, other = handler_job("noop", name="import"), handler_job("noop", name="export")
    run(job, ExecutionStatus.COMPLETED, lag=0.2, seconds=4)
    run(job, ExecutionStatus.FAILED, lag=3, seconds=40, attempts=3)
    run(job, ExecutionStatus.COMPLETED, lag=45, seconds=7, attempts=2)
    manual = run(other, ExecutionStatus.FAILED, trigger=Trigger.MANUAL, seconds=0.05, attempts=2)
    BatchAttempt.objects.create(
        execution=manual, number=1, status=AttemptStatus.LOST, started_at=timezone.now()
    )
    run(job, ExecutionStatus.QUEUED, lag=0.1, hours_ago=0.01)
    run(job, ExecutionStatus.STARTED, lag=0.1, hours_ago=0.02)
    run(job, ExecutionStatus.COMPLETED, lag=999, seconds=999, attempts=3, hours_ago=30)  # too old
    old_queued = run(job, ExecutionStatus.QUEUED, hours_ago=48, lag=1)
    BatchLog.objects.filter(pk=old_queued.pk).update(
        held_by="host:api.example.com", held_reason="waiting for a slot"
    )
    overdue = schedule_create(job=job, kind="interval", interval_every=5)
    BatchSchedule.objects.filter(pk=overdue.pk).update(
        next_fire_at=timezone.now() - timedelta(minutes=10)
    )
    client = Client()
    client.force_login(staff)

    # when scraped
    got = samples(client.get("/metrics"))

    # then executions by status: in the window, and queued or running whatever their age
    assert got[("batchjobs_executions_24h", (("status", "COMPLETED"),))] == 2
    assert got[("batchjobs_executions_24h", (("status", "FAILED"),))] == 2
    assert got[("batchjobs_executions_24h", (("status", "ABANDONED"),))] == 0
    assert got[("batchjobs_executions_active", (("status", "QUEUED"),))] == 2  # old one too
    assert old_queued.pk and got[("batchjobs_executions_active", (("status", "STARTED"),))] == 1
    # the queued ones a limit holds, by limit (the other queued one waits for nothing)
    assert got[("batchjobs_executions_held", (("limit", "host:api.example.com"),))] == 1
    assert len([name for name, _ in got if name == "batchjobs_executions_held"]) == 1
    # fires per job, and the fire lag histogram (cumulative buckets, sum in seconds)
    assert got[("batchjobs_fires_24h", (("job", "import"),))] == 5
    assert ("batchjobs_fires_24h", (("job", "export"),)) not in got  # no schedule fired it
    lag = {labels[0][1]: value for (name, labels), value in got.items()
           if name == "batchjobs_fire_lag_seconds_bucket"}  # fmt: skip
    assert (lag["0.1"], lag["0.25"], lag["2.5"], lag["5.0"], lag["30.0"], lag["60.0"]) == (
        2, 3, 3, 4, 4, 5,
    )  # fmt: skip
    assert lag["+Inf"] == got[("batchjobs_fire_lag_seconds_count", ())] == 5
    assert got[("batchjobs_fire_lag_seconds_sum", ())] == pytest.approx(48.4)
    # durations per job of finished runs
    import_durations = {
        dict(labels)["le"]: value
        for (name, labels), value in got.items()
        if name == "batchjobs_execution_duration_seconds_bucket" and ("job", "import") in labels
    }
    assert (import_durations["5.0"], import_durations["10.0"], import_durations["60.0"]) == (
        1,
        2,
        3,
    )
    assert got[("batchjobs_execution_duration_seconds_sum", (("job", "import"),))] == 51
    assert got[("batchjobs_execution_duration_seconds_count", (("job", "export"),))] == 1
    # retries (attempts after the first) and reaped attempts
    assert got[("batchjobs_retries_24h", ())] == 2 + 1 + 1
    assert got[("batchjobs_retried_executions_24h", ())] == 3
    assert got[("batchjobs_reaped_24h", ())] == 1
    assert got[("batchjobs_schedules_overdue", ())] == 1
    assert got[("batchjobs_broker_up", ())] == 1


def test_queue_depth_counts_every_priority_list_and_beats_are_seen(staff):
    # given three messages waiting in a queue no worker reads, at two priorities
    low, high = (handler_job("noop", queue=QUEUE, priority=p) for p in (9, 0))
    waiting = [run(low, ExecutionStatus.QUEUED), run(low, ExecutionStatus.QUEUED),
               run(high, ExecutionStatus.QUEUED)]  # fmt: skip
    beat_heartbeat_record(beat_id="metrics-test-beat", ttl_seconds=10)
    client = Client()
    client.force_login(staff)
    try:
        executions_publish([e.pk for e in waiting])
        got = samples(client.get("/metrics"))
    finally:
        with app.connection_for_write() as connection:
            connection.default_channel.queue_purge(QUEUE)

    assert got[("batchjobs_queue_depth", (("queue", QUEUE),))] == 3
    assert ("batchjobs_queue_depth", (("queue", "batchjobs"),)) in got
    assert got[("batchjobs_beats_alive", ())] >= 1


def test_rows_set_aside_are_counted_by_kind_and_not_as_overdue(staff):
    # given two overdue schedules, one of them set aside by beat, and an execution set aside
    job = handler_job("noop")
    late, set_aside = (schedule_create(job=job, kind="interval", interval_every=5) for _ in "ab")
    past = timezone.now() - timedelta(minutes=10)
    BatchSchedule.objects.filter(pk__in=[late.pk, set_aside.pk]).update(next_fire_at=past)
    BatchSchedule.objects.filter(pk=set_aside.pk).update(
        set_aside_at=timezone.now(), set_aside_reason="OverflowError: date value out of range"
    )
    execution = run(job, ExecutionStatus.COMPLETED)
    BatchLog.objects.filter(pk=execution.pk).update(
        set_aside_at=timezone.now(), set_aside_reason="IntegrityError: still referred to"
    )
    client = Client()
    client.force_login(staff)
    # when scraped
    got = samples(client.get("/metrics"))
    # then
    assert got[("batchjobs_set_aside_rows", (("kind", "schedule"),))] == 1
    assert got[("batchjobs_set_aside_rows", (("kind", "execution"),))] == 1
    assert got[("batchjobs_schedules_overdue", ())] == 1  # the set-aside one is counted apart


def test_occurrences_of_the_last_24_hours_are_counted_by_outcome(staff):
    # given records of a day ago and of now: a run of three fires skipped as missed, one fired
    schedule = schedule_create(job=handler_job("noop"), kind="interval", interval_every=5)
    now, t0 = timezone.now(), timezone.now() - timedelta(hours=2)
    skip = OccurrenceOutcome.MISSED_SKIPPED
    occurrences_record(
        [Occurrence(schedule.pk, t0, skip, fires=3, last_scheduled_for=t0 + timedelta(minutes=10)),
         Occurrence(schedule.pk, t0 + timedelta(hours=1), OccurrenceOutcome.FIRED)],
        now=now,
    )  # fmt: skip
    occurrences_record([Occurrence(schedule.pk, t0 - timedelta(days=1), skip)],
                       now=now - timedelta(hours=25))  # fmt: skip
    client = Client()
    client.force_login(staff)
    # when scraped
    got = samples(client.get("/metrics"))
    # then fires are counted (a run as its fires), every outcome named, the older one left out
    assert got[("batchjobs_occurrences_24h", (("outcome", "missed_skipped"),))] == 3
    assert got[("batchjobs_occurrences_24h", (("outcome", "fired"),))] == 1
    assert got[("batchjobs_occurrences_24h", (("outcome", "paused"),))] == 0
