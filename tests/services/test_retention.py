"""Retention: finished executions (with their attempts and steps) older than the job's
retention_days, or BATCHJOBS_RETENTION_DAYS, are purged in batches by a housekeeping task that
operators see in django-celery-beat's admin."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from batchjobs.execution.retention import executions_purge_expired
from batchjobs.models import (
    AttemptStatus,
    BatchAttempt,
    BatchLog,
    ExecutionStatus,
    OccurrenceOutcome,
    ScheduleOccurrence,
    StepExecution,
)
from batchjobs.scheduling.occurrences import Occurrence, occurrences_record
from batchjobs.services.schedules import schedule_create
from config.celery_app import app
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db


def aged(job, status: str, days: float) -> BatchLog:
    execution = BatchLog.objects.create(job=job, trigger="schedule", status=status, attempts=1)
    BatchLog.objects.filter(pk=execution.pk).update(
        created_at=timezone.now() - timedelta(days=days)
    )
    BatchAttempt.objects.create(
        execution=execution, number=1, status=AttemptStatus.FAILED, started_at=timezone.now()
    )
    StepExecution.objects.create(execution=execution, step_name="load")
    return execution


def test_each_job_keeps_its_own_period_or_the_global_one(settings):
    settings.BATCHJOBS_RETENTION_DAYS = 7
    short = handler_job("noop", retention_days=1)
    default = handler_job("noop")
    long = handler_job("noop", retention_days=30)
    gone = [
        aged(short, ExecutionStatus.COMPLETED, days=2),
        aged(short, ExecutionStatus.FAILED, days=3),
        aged(default, ExecutionStatus.STOPPED, days=8),
        aged(default, ExecutionStatus.SKIPPED, days=9),
    ]
    kept = [
        aged(short, ExecutionStatus.COMPLETED, days=0.5),
        aged(short, ExecutionStatus.STARTED, days=2),  # still running: never purged
        aged(short, ExecutionStatus.QUEUED, days=5),  # waiting for a retry
        aged(default, ExecutionStatus.FAILED, days=6),
        aged(long, ExecutionStatus.FAILED, days=20),
    ]

    deleted = executions_purge_expired(batch_size=1)  # one row per transaction

    assert deleted == len(gone)
    assert set(BatchLog.objects.values_list("pk", flat=True)) == {e.pk for e in kept}
    # attempts and steps went with their executions
    assert set(BatchAttempt.objects.values_list("execution_id", flat=True)) == {e.pk for e in kept}
    assert set(StepExecution.objects.values_list("execution_id", flat=True)) == {e.pk for e in kept}


def test_occurrence_records_go_with_their_jobs_retention(settings):
    # given records of a job kept one day and of one kept the default seven, some expired
    settings.BATCHJOBS_RETENTION_DAYS = 7
    short = schedule_create(job=handler_job("noop", retention_days=1), kind="interval",
                            interval_every=1)  # fmt: skip
    default = schedule_create(job=handler_job("noop"), kind="interval", interval_every=1)
    now = timezone.now()
    for schedule, days in ((short, 2), (short, 0.5), (default, 8), (default, 2)):
        at = now - timedelta(days=days)
        occurrences_record([Occurrence(schedule.pk, at, OccurrenceOutcome.PAUSED)], now=at)
    # when
    executions_purge_expired(batch_size=1)
    # then each job's period decided
    kept = ScheduleOccurrence.objects.values_list("schedule_id", "recorded_at")
    assert sorted((pk, round((now - at).total_seconds() / 86400, 1)) for pk, at in kept) == [
        (short.pk, 0.5), (default.pk, 2.0),
    ]  # fmt: skip


def test_nothing_expired_deletes_nothing(settings):
    settings.BATCHJOBS_RETENTION_DAYS = 30
    recent = aged(handler_job("noop"), ExecutionStatus.COMPLETED, days=1)
    assert executions_purge_expired() == 0
    assert BatchLog.objects.filter(pk=recent.pk).exists()


def test_housekeeping_tasks_are_registered_and_visible_in_the_beat_admin(admin_client):
    tasks = {task.task: task for task in PeriodicTask.objects.filter(name__startswith="batchjobs:")}

    assert set(tasks) == {
        "batchjobs.executions_purge_expired",
        "batchjobs.notifications_check_missed",
        "batchjobs.backfills_top_up",
    }
    assert tasks["batchjobs.notifications_check_missed"].interval.every == 60
    assert tasks["batchjobs.backfills_top_up"].interval.every == 60
    assert tasks["batchjobs.executions_purge_expired"].crontab.hour == "3"
    assert all(task.enabled for task in tasks.values())
    app.loader.import_default_modules()  # as a worker starting up does
    assert set(tasks) <= set(app.tasks)  # the workers know them by these names
    page = admin_client.get("/admin/django_celery_beat/periodictask/").content.decode()
    assert "batchjobs: retention (purge old executions)" in page
    assert "batchjobs: missed-run check (dead-man notifications)" in page
    assert "batchjobs: backfills (create the next runs up to each cap)" in page


# --- one bad row never stops the others (DESIGN.md §4, invariant 11) --------------------------


def test_a_retention_past_the_calendar_keeps_that_jobs_runs_and_purges_the_others(settings):
    # given a job whose retention, written behind validation's back, reaches before year 1
    settings.BATCHJOBS_RETENTION_DAYS = 7
    forever, short, default = (
        handler_job("noop"),
        handler_job("noop", retention_days=1),
        handler_job("noop"),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE batchjobs_batchjob SET retention_days = 2147483647 WHERE id = %s", [forever.pk]
        )
    kept = aged(forever, ExecutionStatus.COMPLETED, days=3000)
    gone = [
        aged(short, ExecutionStatus.COMPLETED, days=2),
        aged(default, ExecutionStatus.FAILED, days=8),
    ]
    # when
    deleted = executions_purge_expired()
    # then
    assert deleted == len(gone)
    assert set(BatchLog.objects.values_list("pk", flat=True)) == {kept.pk}


def test_an_execution_the_database_will_not_delete_is_set_aside_and_the_others_go(settings):
    # given expired executions, one of which a table of another application refers to
    settings.BATCHJOBS_RETENTION_DAYS = 7
    job = handler_job("noop")
    expired = [aged(job, ExecutionStatus.COMPLETED, days=10 + n) for n in range(5)]
    referred = expired[2]
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE test_report (execution_id bigint REFERENCES batchjobs_batchlog (id))"
        )
        cursor.execute("INSERT INTO test_report VALUES (%s)", [referred.pk])
    # when
    deleted = executions_purge_expired()
    # then the others went in the same pass, and that one is set aside with the error
    assert deleted == 4
    referred.refresh_from_db()
    assert set(BatchLog.objects.values_list("pk", flat=True)) == {referred.pk}
    assert referred.set_aside_at is not None
    # (what both engines say: PostgreSQL goes on to name the table, SQLite names nothing)
    assert referred.set_aside_reason.startswith("IntegrityError: ")
    assert "foreign key constraint" in referred.set_aside_reason.lower()
    # its attempts and steps are still there: its deletion was undone whole
    assert BatchAttempt.objects.filter(execution=referred).exists()
    assert StepExecution.objects.filter(execution=referred).exists()
    # and the next pass leaves it alone
    assert executions_purge_expired() == 0
