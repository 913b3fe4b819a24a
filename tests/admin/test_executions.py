from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from batchjobs.models import (
    AttemptStatus,
    BatchAttempt,
    BatchJob,
    BatchLog,
    ExecutionStatus,
    Trigger,
)
from tests.factories import handler_job

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:batchjobs_batchlog_changelist")


def execution(
    job: BatchJob,
    status: ExecutionStatus = ExecutionStatus.COMPLETED,
    trigger: Trigger = Trigger.SCHEDULE,
    **fields,
) -> BatchLog:
    """An execution as a worker leaves it; no service writes finished executions directly."""
    return BatchLog.objects.create(
        job=job, status=status, trigger=trigger, **({"attempts": 1, "max_attempts": 3} | fields)
    )


def listed_ids(response) -> set[int]:
    return {row.pk for row in response.context["cl"].result_list}


@pytest.fixture
def jobs() -> tuple[BatchJob, BatchJob]:
    return handler_job("noop", name="alpha"), handler_job("noop", name="beta")


def test_list_shows_status_badge_attempts_and_duration(admin_client, jobs):
    started = timezone.now() - timedelta(minutes=2)
    failed = execution(
        jobs[0],
        ExecutionStatus.FAILED,
        attempts=3,
        started_at=started,
        finished_at=started + timedelta(seconds=75),
    )

    response = admin_client.get(CHANGELIST)

    content = response.content.decode()
    assert response.status_code == 200
    assert listed_ids(response) == {failed.pk}
    assert "background:#c62828" in content and ">FAILED</span>" in content
    assert "3/3" in content
    assert "1 min 15 s" in content


def test_list_filters_by_job_status_trigger_and_date(admin_client, jobs):
    alpha, beta = jobs
    completed = execution(alpha, ExecutionStatus.COMPLETED, Trigger.SCHEDULE)
    failed = execution(alpha, ExecutionStatus.FAILED, Trigger.MANUAL)
    other_job = execution(beta, ExecutionStatus.FAILED, Trigger.SCHEDULE)
    old = execution(beta, ExecutionStatus.COMPLETED, Trigger.SCHEDULE)
    BatchLog.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=30))

    by_job = admin_client.get(CHANGELIST, {"job__id__exact": alpha.pk})
    by_status = admin_client.get(CHANGELIST, {"status__exact": "FAILED"})
    by_trigger = admin_client.get(CHANGELIST, {"trigger__exact": "manual"})
    unfiltered = admin_client.get(CHANGELIST)
    changelist = unfiltered.context["cl"]
    date_filter = next(spec for spec in changelist.filter_specs if spec.field_path == "created_at")
    past_week = next(c for c in date_filter.choices(changelist) if c["display"] == "Past 7 days")
    by_date = admin_client.get(CHANGELIST + past_week["query_string"])

    assert listed_ids(by_job) == {completed.pk, failed.pk}
    assert listed_ids(by_status) == {failed.pk, other_job.pk}
    assert listed_ids(by_trigger) == {failed.pk}
    assert listed_ids(by_date) == {completed.pk, failed.pk, other_job.pk}


def test_detail_shows_attempts_and_the_error_preformatted(admin_client, jobs):
    traceback = 'Traceback (most recent call last):\n  File "job.py", line 3\nRuntimeError: boom'
    failed = execution(
        jobs[0],
        ExecutionStatus.FAILED,
        attempts=2,
        error=traceback,
        note="3 missed fires coalesced",
    )
    now = timezone.now()
    BatchAttempt.objects.create(
        execution=failed,
        number=1,
        status=AttemptStatus.FAILED,
        worker="celery@node-1",
        started_at=now - timedelta(seconds=30),
        finished_at=now - timedelta(seconds=29),
        http_status=503,
        response_excerpt="Service Unavailable",
        error="HTTP 503",
    )
    BatchAttempt.objects.create(
        execution=failed,
        number=2,
        status=AttemptStatus.FAILED,
        worker="celery@node-2",
        started_at=now - timedelta(seconds=5),
        finished_at=now,
        error=traceback,
    )

    response = admin_client.get(reverse("admin:batchjobs_batchlog_change", args=[failed.pk]))

    content = response.content.decode()
    assert response.status_code == 200
    attempts = response.context["inline_admin_formsets"][0].formset.queryset
    assert [attempt.number for attempt in attempts] == [1, 2]
    for shown in ("celery@node-1", "celery@node-2", "503", "Service Unavailable", "HTTP 503"):
        assert shown in content
    assert "RuntimeError: boom</pre>" in content
    assert "3 missed fires coalesced" in content
    assert "  File &quot;job.py&quot;, line 3" in content


def test_executions_are_read_only(admin_client, jobs):
    queued = execution(jobs[0], ExecutionStatus.QUEUED)
    change = reverse("admin:batchjobs_batchlog_change", args=[queued.pk])

    add_response = admin_client.get(reverse("admin:batchjobs_batchlog_add"))
    change_response = admin_client.post(change, {"status": "COMPLETED"})

    assert add_response.status_code == 403
    assert change_response.status_code == 403
    queued.refresh_from_db()
    assert queued.status == ExecutionStatus.QUEUED


def test_only_superusers_may_delete_executions(admin_client, staff_client, jobs):
    finished = execution(jobs[0])
    delete = reverse("admin:batchjobs_batchlog_delete", args=[finished.pk])
    staff = staff_client("view_batchlog", "delete_batchlog")

    refused = staff.post(delete, {"post": "yes"})
    assert refused.status_code == 403
    assert BatchLog.objects.filter(pk=finished.pk).exists()

    admin_client.post(delete, {"post": "yes"})
    assert not BatchLog.objects.filter(pk=finished.pk).exists()


def test_a_user_who_may_view_executions_sees_their_attempts(staff_client, jobs):
    failed = execution(jobs[0], ExecutionStatus.FAILED)
    BatchAttempt.objects.create(
        execution=failed,
        number=1,
        status=AttemptStatus.LOST,
        worker="celery@gone",
        started_at=timezone.now(),
    )

    response = staff_client("view_batchlog").get(
        reverse("admin:batchjobs_batchlog_change", args=[failed.pk])
    )

    assert response.status_code == 200
    assert "celery@gone" in response.content.decode()
