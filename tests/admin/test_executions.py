import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from batchjobs.models import (
    AttemptLogLine,
    AttemptStatus,
    AuditEntry,
    BatchAttempt,
    BatchJob,
    BatchLog,
    ExecutionStatus,
    JobKind,
    JobTag,
    StepExecution,
    Trigger,
)
from batchjobs.selectors.executions import ERROR_LINE_MAX_CHARS, STEPS_SHOWN
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
    attempts = [shown["attempt"] for shown in response.context["attempts"]]
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


def as_batch_job(job: BatchJob) -> BatchJob:
    """The job as a batch job's, steps and all (the rows say so; nothing runs it)."""
    BatchJob.objects.filter(pk=job.pk).update(kind=JobKind.BATCH, batch_job_name="tests.numbers")
    return job


def test_a_running_batch_execution_shows_its_steps_and_a_progress_bar(admin_client, jobs):
    running = execution(as_batch_job(jobs[0]), ExecutionStatus.STARTED, started_at=timezone.now())
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
    assert re.findall(r'<td class="bj-step-name">([^<]*)</td>', content) == ["extract", "load"]
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

    attempt = content[content.index('id="attempt-1"') :]
    assert "Response: HTTP 503" in attempt
    assert "{&quot;detail&quot;: &quot;maintenance&quot;}" in attempt
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
        r'class="bj-operation [^"]*"[^>]*>(\w+)</button>', operator_page.content.decode()
    )
    assert found == buttons
    viewer_content = viewer_page.content.decode()
    assert 'class="bj-operation ' not in viewer_content
    assert "bj-operator-form" not in viewer_content


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


# --- the "what happened?" header, attempts with their logs, the live endpoints ------------------


def header_of(response) -> str:
    content = response.content.decode()
    return content[content.index('id="bj-header"') : content.index("</section>")]


def attempt_row(run: BatchLog, number: int, **fields) -> BatchAttempt:
    return BatchAttempt.objects.create(execution=run, number=number, **fields)


def log(attempt: BatchAttempt, count: int, *, first: int = 1, level: int = 20) -> None:
    now = timezone.now()
    AttemptLogLine.objects.bulk_create(
        AttemptLogLine(
            attempt=attempt,
            number=n,
            logged_at=now,
            level=level,
            logger="jobs.export",
            message=f"line {n} of attempt {attempt.number}",
        )  # fmt: skip
        for n in range(first, first + count)
    )


def test_a_failed_execution_says_what_happened_at_the_top(admin_client, jobs, django_user_model):
    # given a run that failed on its last attempt, started by hand
    user = django_user_model.objects.create_user(username="night-operator", password="x")
    started = timezone.now() - timedelta(seconds=40)
    failed = execution(
        jobs[0], ExecutionStatus.FAILED, Trigger.MANUAL, attempts=3, created_by=user,
        started_at=started, finished_at=started + timedelta(seconds=2.35),
        next_attempt_at=started, logical_time=started,
        error='Traceback (most recent call last):\n  File "x.py"\nConnectionError: warehouse down',
    )  # fmt: skip

    # when the operator opens it
    response = admin_client.get(change_url(failed))

    # then the header names the status, the error in one line, the attempt, the duration to the
    # millisecond, who started it and the job; no retry is announced on a finished run
    header = header_of(response)
    assert 'class="field-status_badge"' in header and ">FAILED</span>" in header
    assert '<span class="bj-error-line" title="ConnectionError: warehouse down">' in header
    assert re.search(r"attempt</dt><dd>3 of 3</dd>", header)
    assert "2.350 s" in header
    assert "Manual (admin), by night-operator" in header
    assert f'href="{reverse("admin:batchjobs_batchjob_change", args=[jobs[0].pk])}">alpha' in header
    assert "next retry" not in header and "Next attempt at" not in response.content.decode()
    assert response.context["ended"] is True and 'data-ended="true"' in response.content.decode()


def test_a_run_waiting_to_retry_counts_down_to_the_second(admin_client, jobs):
    now = timezone.now()
    retrying = execution(
        jobs[0], ExecutionStatus.QUEUED, attempts=1, next_attempt_at=now + timedelta(seconds=12),
        error="RuntimeError: flaky",
    )  # fmt: skip
    first = attempt_row(
        retrying, 1, status=AttemptStatus.FAILED, worker="celery@a",
        started_at=now - timedelta(seconds=1.2), finished_at=now - timedelta(seconds=1.196),
        error="RuntimeError: flaky",
    )  # fmt: skip

    response = admin_client.get(change_url(retrying))

    header = header_of(response)
    assert re.search(r"next retry</dt><dd><time[^>]*>in 1[12] s</time>", header), header
    assert re.search(r"attempt</dt><dd>1 of 3</dd>", header)
    assert "RuntimeError: flaky" in header
    content = response.content.decode()
    attempt = content[content.index('id="attempt-1"') :]
    assert "0.004 s" in attempt  # a quick failure is not "0.0 s"
    started = timezone.localtime(first.started_at)
    assert f">{started:%H:%M:%S}.{started.microsecond // 1000:03d}</time>" in attempt
    assert response.context["ended"] is False and 'data-ended="false"' in content


def test_each_attempt_shows_when_it_started_after_the_one_before(admin_client, jobs):
    now = timezone.now()
    failed = execution(jobs[0], ExecutionStatus.FAILED, attempts=2)
    attempt_row(
        failed, 1, status=AttemptStatus.FAILED, started_at=now - timedelta(seconds=10),
        finished_at=now - timedelta(seconds=9.9),
    )  # fmt: skip
    attempt_row(
        failed, 2, status=AttemptStatus.FAILED, started_at=now - timedelta(seconds=5.9),
        finished_at=now - timedelta(seconds=5.8),
    )  # fmt: skip

    content = admin_client.get(change_url(failed)).content.decode()

    second = content[content.index('id="attempt-2"') :]
    first = content[content.index('id="attempt-1"') : content.index('id="attempt-2"')]
    assert 'class="bj-gap">4.000 s</dd>' in second
    assert "bj-gap" not in first


def test_a_running_execution_shows_progress_and_no_retry(admin_client, jobs):
    running = execution(
        jobs[0], ExecutionStatus.STARTED, started_at=timezone.now() - timedelta(seconds=30),
        progress_done=30, progress_total=120,
    )  # fmt: skip
    attempt_row(running, 1, status=AttemptStatus.RUNNING, worker="celery@b",
                started_at=timezone.now() - timedelta(seconds=30))  # fmt: skip

    header = header_of(admin_client.get(change_url(running)))

    assert ">STARTED</span>" in header
    assert re.search(r"running for</dt><dd>3\d\.\d s</dd>", header), header
    assert '<div class="field-progress' in header and "30 of 120 items" in header
    assert "next retry" not in header and "bj-error-line" not in header


def test_a_completed_execution_shows_its_duration_and_no_retry(admin_client, jobs):
    started = timezone.now() - timedelta(minutes=5)
    done = execution(
        jobs[0], ExecutionStatus.COMPLETED, attempts=2, started_at=started,
        finished_at=started + timedelta(seconds=75), next_attempt_at=started,
    )  # fmt: skip

    header = header_of(admin_client.get(change_url(done)))

    assert ">COMPLETED</span>" in header and "1 min 15 s" in header
    assert "next retry" not in header and "bj-error-line" not in header


def test_an_attempt_shows_its_last_log_lines_request_and_response(admin_client, jobs):
    failed = execution(jobs[0], ExecutionStatus.FAILED, attempts=1)
    attempt = attempt_row(
        failed, 1, status=AttemptStatus.FAILED, started_at=timezone.now(), http_status=502,
        response_excerpt="Bad gateway", log_lines_dropped=7,
        request={"method": "POST", "url": "https://api.example.com/run",
                 "headers": {"Authorization": "********"}, "body": '{"day": "2026-12-03"}'},
        error="Traceback ...\nHTTPError: 502",
    )  # fmt: skip
    log(attempt, 250)

    response = admin_client.get(change_url(failed))

    content = response.content.decode()
    shown = response.context["attempts"][0]
    assert [line.number for line in shown["lines"]] == list(range(51, 251))
    assert "line 250 of attempt 1" in content and "line 50 of attempt 1" not in content
    assert "Show 50 earlier lines" in content
    assert "7 more lines were logged past the cap and not kept." in content
    assert "<code>POST https://api.example.com/run</code>" in content
    assert "<th>Authorization</th><td><code>********</code>" in content
    assert "Response: HTTP 502" in content and "Bad gateway" in content
    assert '<summary class="bj-error-line">HTTPError: 502</summary>' in content


def test_the_page_costs_the_same_queries_whatever_its_attempts_and_lines(
    admin_client, jobs, django_assert_max_num_queries
):
    as_batch_job(jobs[0])
    small = execution(jobs[0], ExecutionStatus.FAILED, attempts=1)
    log(attempt_row(small, 1, status=AttemptStatus.FAILED, started_at=timezone.now()), 3)
    large = execution(jobs[0], ExecutionStatus.FAILED, attempts=3)
    for number in (1, 2, 3):
        attempt = attempt_row(large, number, status=AttemptStatus.FAILED,
                              started_at=timezone.now())  # fmt: skip
        log(attempt, 400)
        StepExecution.objects.create(execution=large, step_name=f"s{number}", status="FAILED")
    admin_client.get(change_url(small))  # the session and the user, read once

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small_page:
        admin_client.get(change_url(small))
    with django_assert_max_num_queries(len(small_page.captured_queries)):
        response = admin_client.get(change_url(large))
    assert len(response.context["attempts"]) == 3
    assert response.content.decode().count('<tr class="bj-step"') == 3


def test_steps_are_shown_for_batch_jobs_only(admin_client, jobs):
    handler_run = execution(jobs[1])
    batch_run = execution(as_batch_job(jobs[0]), ExecutionStatus.QUEUED, attempts=0)

    handler_page = admin_client.get(change_url(handler_run)).content.decode()
    batch_page = admin_client.get(change_url(batch_run)).content.decode()

    assert 'id="bj-steps"' not in handler_page
    assert 'id="bj-steps"' in batch_page and "No step has started yet." in batch_page


def test_the_live_endpoint_sends_new_lines_and_new_attempts(admin_client, jobs):
    running = execution(jobs[0], ExecutionStatus.STARTED, attempts=2,
                        started_at=timezone.now())  # fmt: skip
    first = attempt_row(running, 1, status=AttemptStatus.FAILED, started_at=timezone.now())
    log(first, 3)
    second = attempt_row(running, 2, status=AttemptStatus.RUNNING, started_at=timezone.now())
    log(second, 5)
    live = reverse("admin:batchjobs_batchlog_live", args=[running.pk])

    # the page knows attempt 1 up to its line 3: the rest comes
    response = admin_client.get(live, {"attempt": 1, "line": 3})
    data = response.json()
    assert response.status_code == 200 and "no-cache" in response["Cache-Control"]
    assert data["ended"] is False and ">STARTED</span>" in data["header"]
    assert data["lines"] == "" and data["last_line"] == 3
    assert (
        'id="attempt-2"' in data["new_attempts"] and "line 5 of attempt 2" in data["new_attempts"]
    )
    assert "Attempt 1" in data["summary"]

    # the page knows attempt 2 up to line 2; the run ends meanwhile
    BatchLog.objects.filter(pk=running.pk).update(status=ExecutionStatus.COMPLETED)
    data = admin_client.get(live, {"attempt": 2, "line": 2}).json()
    assert re.findall(r'data-line="(\d+)"', data["lines"]) == ["3", "4", "5"]
    assert data["last_line"] == 5 and data["new_attempts"] == "" and data["ended"] is True

    # bad numbers are the start, not a 500
    assert admin_client.get(live, {"attempt": "x", "line": "-1"}).status_code == 200


def test_show_earlier_lines_fetches_those_before_the_first_shown(admin_client, jobs):
    failed = execution(jobs[0], ExecutionStatus.FAILED, attempts=1)
    log(attempt_row(failed, 1, status=AttemptStatus.FAILED, started_at=timezone.now()), 700)
    url = reverse("admin:batchjobs_batchlog_log", args=[failed.pk])

    data = admin_client.get(url, {"attempt": 1, "before": 501}).json()

    numbers = [int(n) for n in re.findall(r'data-line="(\d+)"', data["lines"])]
    assert numbers == list(range(1, 501)) and data["first_line"] == 1
    more = admin_client.get(url, {"attempt": 1, "before": 601}).json()
    assert more["first_line"] == 101 and more["more"] == "Show 100 earlier lines"


def test_the_live_endpoints_need_the_view_permission(staff_client, jobs):
    run = execution(jobs[0], ExecutionStatus.STARTED)
    live = reverse("admin:batchjobs_batchlog_live", args=[run.pk])
    earlier = reverse("admin:batchjobs_batchlog_log", args=[run.pk])
    missing = reverse("admin:batchjobs_batchlog_live", args=[run.pk + 1000])

    outsider = staff_client("view_batchjob")
    assert outsider.get(live).status_code == 403
    assert outsider.get(earlier).status_code == 403
    viewer = staff_client("view_batchlog")
    assert viewer.get(live).status_code == 200
    assert viewer.get(missing).status_code == 404


def test_skipped_items_are_a_table_in_line_order(admin_client, jobs):
    run = execution(jobs[0], ExecutionStatus.COMPLETED)
    for partition, lines in (("p1", [7, 2]), ("p0", [3])):
        StepExecution.objects.create(
            execution=run, step_name="import", partition=partition, status="COMPLETED",
            execution_context={"file.position": 10, "bad_lines": [
                {"line": n, "reason": "3 fields, expected 4", "text": f"a,b,{n}"} for n in lines
            ]},
        )  # fmt: skip

    response = admin_client.get(change_url(run))

    content = response.content.decode()
    assert [item.line for item in response.context["skipped_items"]] == [2, 3, 7]
    table = content[content.index('id="bj-skipped"') :]
    assert "3 skipped items" in table
    assert (
        "<td>import [p1]</td><td>2</td><td>3 fields, expected 4</td><td><code>a,b,2</code>" in table
    )
    assert "&quot;bad_lines&quot;" not in table[: table.index("</table>")]


# --- the list -----------------------------------------------------------------------------------


def test_the_list_searches_the_error_text_and_filters_by_job_tag(admin_client, jobs):
    alpha, beta = jobs
    tag = JobTag.objects.create(name="nightly")
    beta.tags.add(tag)
    timeout = execution(alpha, ExecutionStatus.FAILED, error="Traceback\nTimeoutError: db slow")
    other = execution(beta, ExecutionStatus.FAILED, error="ValueError: bad row")
    execution(alpha, ExecutionStatus.COMPLETED)

    def searched(term: str) -> set[int]:
        response = admin_client.get(CHANGELIST, {"q": term})
        assert response.status_code == 200
        return listed_ids(response)

    tagged = admin_client.get(CHANGELIST, {"job__tags__id__exact": tag.pk})

    assert searched("timeouterror") == {timeout.pk}
    assert searched('"db slow"') == {timeout.pk} and searched("slow bad") == set()
    assert searched("beta") == {other.pk}  # the job's name
    assert searched(f"#{other.pk}") == {other.pk}
    assert searched("x" * 10_000) == set() and searched('"unclosed') == set()
    assert listed_ids(tagged) == {other.pk}


def test_the_list_shows_compact_times_and_durations(admin_client, jobs):
    started = timezone.now() - timedelta(seconds=3)
    execution(jobs[0], started_at=started, finished_at=started + timedelta(seconds=0.25))

    content = admin_client.get(CHANGELIST).content.decode()

    assert "0.250 s" in content
    local = timezone.localtime(BatchLog.objects.get().created_at)
    assert re.search(
        rf'<td class="field-created_when"><time [^>]*>{local:%H:%M:%S}</time>', content
    )


# --- what the live answer redraws: buttons, breadcrumb, steps; a long error; incremental lines ---


def live_url(run: BatchLog) -> str:
    return reverse("admin:batchjobs_batchlog_live", args=[run.pk])


def buttons(html: str) -> list[str]:
    return re.findall(r'class="bj-operation [^"]*"[^>]*>(\w+)</button>', html)


def test_the_live_answer_brings_the_buttons_and_status_of_now(staff_client, jobs):
    # given a page opened while the run ran, by an operator and by a viewer
    running = execution(jobs[0], ExecutionStatus.STARTED, started_at=timezone.now())
    operator, viewer = staff_client("view_batchlog", "run_batchjob"), staff_client("view_batchlog")
    page = operator.get(change_url(running)).content.decode()
    assert buttons(page) == ["Stop"] and 'id="bj-crumb-status">STARTED</span>' in page

    # when the run has ended stopped
    before = operator.get(live_url(running)).json()
    BatchLog.objects.filter(pk=running.pk).update(status=ExecutionStatus.STOPPED)
    after = operator.get(live_url(running)).json()

    # then the answer offers what the page offers a stopped run, the markup of the page's own
    assert (before["status"], buttons(before["operations"])) == ("STARTED", ["Stop"])
    assert (after["status"], after["ended"]) == ("STOPPED", True)
    assert buttons(after["operations"]) == ["Restart", "Abandon"]
    assert 'data-operations="restart abandon ' in after["operations"]
    reloaded = operator.get(change_url(running)).content.decode()
    start = reloaded.index('<div id="bj-operations"')
    assert buttons(reloaded[start:]) == buttons(after["operations"])
    assert 'id="bj-crumb-status">STOPPED</span>' in reloaded
    assert buttons(viewer.get(live_url(running)).json()["operations"]) == []


def test_a_button_drawn_by_the_live_answer_posts_with_a_valid_token(django_user_model, jobs):
    # given an operator whose requests are checked for their CSRF token, as a browser's are
    client = Client(enforce_csrf_checks=True)
    client.force_login(django_user_model.objects.create_superuser("ops", "ops@example.com", "x"))
    stopped = execution(jobs[0], ExecutionStatus.STOPPED)
    operations = client.get(live_url(stopped)).json()["operations"]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)" form="bj-operator-form"',
                      operations)  # fmt: skip
    assert token is not None

    refused = client.post(operate_url(stopped, "restart"))
    restarted = client.post(operate_url(stopped, "restart"),
                            {"csrfmiddlewaretoken": token.group(1)})  # fmt: skip

    assert refused.status_code == 403
    assert restarted.status_code == 302
    assert BatchLog.objects.filter(restart_of=stopped).count() == 1


def test_the_live_answer_of_a_batch_job_brings_its_steps_bounded(admin_client, jobs):
    running = execution(as_batch_job(jobs[0]), ExecutionStatus.STARTED, started_at=timezone.now())
    step = StepExecution.objects.create(
        execution=running, step_name="load", status="STARTED", read_count=10,
        started_at=timezone.now(),
    )  # fmt: skip
    assert '<td class="bj-step-read">10</td>' in admin_client.get(live_url(running)).json()["steps"]

    StepExecution.objects.filter(pk=step.pk).update(read_count=4200, error="x" * 500)
    StepExecution.objects.bulk_create(
        StepExecution(execution=running, step_name="load", partition=f"p{n:03}", status="STARTED")
        for n in range(STEPS_SHOWN)
    )
    steps = admin_client.get(live_url(running)).json()["steps"]

    assert '<td class="bj-step-read">4200</td>' in steps
    assert steps.count('<tr class="bj-step"') == STEPS_SHOWN
    assert "1 more step is not listed." in steps
    assert "x" * 199 + "…</summary>" in steps and "x" * 500 + "</pre>" in steps
    handler_run = execution(jobs[1], ExecutionStatus.STARTED)
    assert "steps" not in admin_client.get(live_url(handler_run)).json()


def test_a_long_error_is_cut_to_one_short_line_and_shown_in_full_below(admin_client, jobs):
    endless = "E" * 1_000
    failed = execution(jobs[0], ExecutionStatus.FAILED, error=f"Traceback\nValueError: {endless}")
    attempt_row(failed, 1, status=AttemptStatus.FAILED, started_at=timezone.now(),
                error=f"ValueError: {endless}")  # fmt: skip

    content = admin_client.get(change_url(failed)).content.decode()

    one_liners = re.findall(r'class="bj-error-line"[^>]*>([^<]*)<', content)
    assert len(one_liners) == 2  # the header's and the attempt's
    for line in one_liners:
        assert len(line) == ERROR_LINE_MAX_CHARS and line.startswith("ValueError: EEE")
        assert line.endswith("…")
    assert content.count(f"ValueError: {endless}</pre>") == 2  # in full, folded


def test_a_live_update_reads_only_the_lines_after_those_shown(admin_client, jobs):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    running = execution(jobs[0], ExecutionStatus.STARTED, attempts=1, started_at=timezone.now())
    attempt = attempt_row(running, 1, status=AttemptStatus.RUNNING, started_at=timezone.now())
    log(attempt, 300)

    with CaptureQueriesContext(connection) as nothing_new:
        idle = admin_client.get(live_url(running), {"attempt": 1, "line": 300}).json()
    log(attempt, 2, first=301)
    with CaptureQueriesContext(connection) as two_new:
        moved = admin_client.get(live_url(running), {"attempt": 1, "line": 300}).json()

    assert (idle["lines"], idle["last_line"]) == ("", 300)
    assert re.findall(r'data-line="(\d+)"', moved["lines"]) == ["301", "302"]
    assert moved["last_line"] == 302 and "Attempt 1" in moved["summary"]
    # the attempt's tail (its last 200 lines) is read once, when the page opens, not per update
    for queries in (nothing_new, two_new):
        assert not any("ROW_NUMBER" in query["sql"].upper() for query in queries.captured_queries)
