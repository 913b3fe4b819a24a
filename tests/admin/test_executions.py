import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from batchjobs.models import (
    AttemptStatus,
    AuditEntry,
    BatchAttempt,
    BatchJob,
    BatchLog,
    ExecutionStatus,
    StepExecution,
    Trigger,
)
from tests.support.factories import handler_job

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


def test_a_run_held_by_a_limit_shows_why_it_waits_in_the_list_and_on_its_page(admin_client, jobs):
    reason = "waiting for a slot: host api.example.com has 50 running (limit 50 at once)"
    held = execution(
        jobs[0], ExecutionStatus.QUEUED, attempts=0, held_by="host:api.example.com",
        held_reason=reason,
    )  # fmt: skip
    # a reason left from an earlier hold is not shown once the run went on
    ran = execution(jobs[1], ExecutionStatus.COMPLETED, held_reason="waiting for a slot: old")

    listed = admin_client.get(CHANGELIST).content.decode()
    page = admin_client.get(reverse("admin:batchjobs_batchlog_change", args=[held.pk]))
    other = admin_client.get(reverse("admin:batchjobs_batchlog_change", args=[ran.pk]))

    assert reason in listed and "waiting for a slot: old" not in listed
    assert reason in page.content.decode()
    assert "waiting for a slot" not in other.content.decode()


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


# --- progress, steps and the operator's actions ----------------------------------------------


def change_url(execution: BatchLog) -> str:
    return reverse("admin:batchjobs_batchlog_change", args=[execution.pk])


def operate_url(execution: BatchLog, operation: str) -> str:
    return reverse(f"admin:batchjobs_batchlog_{operation}", args=[execution.pk])


def shown_messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_a_running_batch_execution_shows_its_steps_and_a_progress_bar(admin_client, jobs):
    running = execution(jobs[0], ExecutionStatus.STARTED, started_at=timezone.now())
    StepExecution.objects.create(
        execution=running, step_name="extract", status="COMPLETED", read_count=500,
        write_count=498, write_skip_count=2, commit_count=50, started_at=timezone.now(),
        finished_at=timezone.now() + timedelta(seconds=12),
    )  # fmt: skip
    StepExecution.objects.create(
        execution=running, step_name="load", status="STARTED", read_count=120, write_count=115,
        filter_count=5, commit_count=12, rollback_count=1,
        started_at=timezone.now() - timedelta(seconds=30),
    )  # fmt: skip

    response = admin_client.get(change_url(running))

    content = response.content.decode()
    steps = response.context["inline_admin_formsets"][1].formset.queryset
    assert [step.step_name for step in steps] == ["extract", "load"]
    assert "0/0/2" in content and "12.0 s" in content  # skips and duration of extract
    progress = content[content.index("field-progress") :]
    assert "<progress" in progress and "load: 120 items" in progress
    assert re.search(r"load: 120 items · [\d.]+ items/s · total unknown", progress)


def test_the_last_response_and_the_error_with_its_traceback(admin_client, jobs):
    failed = execution(jobs[0], ExecutionStatus.FAILED, error="Traceback ...\nValueError: no")
    BatchAttempt.objects.create(
        execution=failed, number=1, status=AttemptStatus.FAILED, started_at=timezone.now(),
        http_status=503, response_excerpt='{"detail": "maintenance"}',
    )  # fmt: skip

    content = admin_client.get(change_url(failed)).content.decode()

    last = content[content.index("field-last_response") :]
    assert (
        "HTTP 503 (attempt 1)" in last and "{&quot;detail&quot;: &quot;maintenance&quot;}" in last
    )
    assert "Traceback ...\nValueError: no</pre>" in content


@pytest.mark.parametrize(
    ("status", "buttons"),
    [
        (ExecutionStatus.QUEUED, ["Stop"]),
        (ExecutionStatus.STARTED, ["Stop"]),
        (ExecutionStatus.STOPPING, []),
        (ExecutionStatus.FAILED, ["Restart", "Abandon"]),
        (ExecutionStatus.STOPPED, ["Restart", "Abandon"]),
        (ExecutionStatus.COMPLETED, []),
    ],
)
def test_buttons_fit_the_status_and_need_the_run_permission(staff_client, jobs, status, buttons):
    shown = execution(jobs[0], status)
    operator_page = staff_client("view_batchlog", "run_batchjob").get(change_url(shown))
    viewer_page = staff_client("view_batchlog").get(change_url(shown))

    found = re.findall(
        r'class="historylink bj-operation"[^>]*>(\w+)</button>', operator_page.content.decode()
    )
    assert found == buttons
    assert "bj-operation" not in viewer_page.content.decode()


def test_the_actions_are_offered_only_to_those_who_may_run(staff_client):
    viewer = staff_client("view_batchlog").get(CHANGELIST)
    operator = staff_client("view_batchlog", "run_batchjob").get(CHANGELIST)

    assert viewer.context["action_form"] is None  # no action at all, so no action bar
    choices = operator.context["action_form"].fields["action"].choices
    assert [name for name, _ in choices] == [
        "", "stop_selected", "restart_selected", "abandon_selected",
    ]  # fmt: skip


def test_the_stop_button_stops_and_the_audit_names_who(staff_client, jobs):
    queued = execution(jobs[0], ExecutionStatus.QUEUED)
    client = staff_client("view_batchlog", "run_batchjob")

    response = client.post(operate_url(queued, "stop"), follow=True)

    queued.refresh_from_db()
    assert queued.status == ExecutionStatus.STOPPED
    assert response.redirect_chain[-1][0] == change_url(queued)
    assert shown_messages(response) == [f"Execution #{queued.pk} asked to stop: now STOPPED."]
    entry = AuditEntry.objects.get(object_id=queued.pk, action="stopped")
    assert entry.actor_name == "staff-view_batchlog-run_batchjob"


def test_operations_without_the_permission_or_by_get_are_refused(staff_client, jobs):
    queued = execution(jobs[0], ExecutionStatus.QUEUED)

    refused = staff_client("view_batchlog").post(operate_url(queued, "stop"))
    by_get = staff_client("view_batchlog", "run_batchjob").get(operate_url(queued, "stop"))

    assert (refused.status_code, by_get.status_code) == (403, 405)
    queued.refresh_from_db()
    assert queued.status == ExecutionStatus.QUEUED


def test_restart_opens_the_new_execution(admin_client, jobs):
    stopped = execution(jobs[0], ExecutionStatus.STOPPED)

    response = admin_client.post(operate_url(stopped, "restart"), follow=True)

    restarted = BatchLog.objects.get(restart_of=stopped)
    assert restarted.status == ExecutionStatus.QUEUED and restarted.trigger == Trigger.RESTART
    assert response.redirect_chain[-1][0] == change_url(restarted)
    assert f"Execution #{stopped.pk} restarted as" in shown_messages(response)[0]


def test_bulk_actions_report_each_execution(admin_client, jobs):
    queued = execution(jobs[0], ExecutionStatus.QUEUED)
    done = execution(jobs[0], ExecutionStatus.COMPLETED)
    failed = execution(jobs[1], ExecutionStatus.FAILED)

    stopped = admin_client.post(
        CHANGELIST,
        {"action": "stop_selected", "_selected_action": [queued.pk, done.pk]},
        follow=True,
    )
    abandoned = admin_client.post(
        CHANGELIST,
        {"action": "abandon_selected", "_selected_action": [failed.pk, done.pk]},
        follow=True,
    )

    assert shown_messages(stopped) == [
        f"Execution #{queued.pk} asked to stop: now STOPPED.",
        f"Execution #{done.pk} was not asked to stop: execution {done.pk} is COMPLETED; "
        "it cannot be stopped",
    ]
    assert shown_messages(abandoned) == [  # one message per execution, in id order
        f"Execution #{done.pk} was not abandoned: execution {done.pk} is COMPLETED; "
        "only STOPPED or FAILED executions can be abandoned",
        f"Execution #{failed.pk} abandoned: now ABANDONED.",
    ]
    statuses = dict(BatchLog.objects.values_list("pk", "status"))
    assert (statuses[queued.pk], statuses[done.pk], statuses[failed.pk]) == (
        "STOPPED", "COMPLETED", "ABANDONED",
    )  # fmt: skip
