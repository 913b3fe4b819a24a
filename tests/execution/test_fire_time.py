"""The fire time given to the job (issue #15): every run carries its logical time and data
interval; handlers see them, batch jobs are one instance per period, HTTP jobs fill them into
their URL, headers and body, and each attempt stores the request as sent."""

import json
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from batchjobs.batch import JobBuilder, tasklet_step
from batchjobs.batch.registry import batch_job
from batchjobs.errors import Conflict, InvalidInput
from batchjobs.execution.http_job import run_http_job
from batchjobs.execution.lifecycle import execution_claim
from batchjobs.handlers.registry import HandlerContext, NonRetryableError, handler
from batchjobs.models import (
    AttemptStatus,
    BatchAttempt,
    BatchJob,
    BatchLog,
    ExecutionStatus,
    Trigger,
)
from batchjobs.models.clock import database_now
from batchjobs.rules.masking import SECRET_MASK
from batchjobs.services import operator
from batchjobs.services.jobs import job_create
from batchjobs.services.schedules import schedule_create
from tests.support.factories import handler_job, http_job, start
from tests.support.runs import IN_PROCESS_QUEUE, run_in_process

pytestmark = pytest.mark.django_db

SEOUL = ZoneInfo("Asia/Seoul")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- a handler sees the period it processes -----------------------------------------------


@handler("tests.fire_time_seen", schema={"type": "object", "properties": {"fail_first": {}}})
def fire_time_seen(ctx: HandlerContext, *, fail_first: bool = False) -> dict:
    """Return what the context says of the run's period; fail the first attempt if asked."""
    if fail_first and ctx.attempt == 1:
        raise RuntimeError("first attempt fails")
    return {
        name: getattr(ctx, name).isoformat() if getattr(ctx, name) else None
        for name in ("logical_time", "data_interval_start", "data_interval_end", "scheduled_for")
    } | {"attempt": ctx.attempt}


def test_a_handler_sees_the_logical_time_and_interval_a_retry_keeps():
    # given: an hourly schedule in Seoul, and a run started for 10:30 local that fails once
    job = handler_job("tests.fire_time_seen", max_attempts=2, queue=IN_PROCESS_QUEUE)
    schedule_create(job=job, kind="cron", cron_expression="0 * * * *", timezone="Asia/Seoul")
    logical = datetime(2027, 1, 4, 10, 30, tzinfo=SEOUL)
    execution = operator.job_start(
        job_name=job.name, params={"fail_first": True}, logical_time=logical
    )
    # when
    first = run_in_process(execution)
    second = run_in_process(execution)
    # then: the second attempt, the next "morning", processes the same period
    assert first.status == ExecutionStatus.QUEUED
    assert second.status == ExecutionStatus.COMPLETED
    assert second.result == {
        "logical_time": "2027-01-04T01:30:00+00:00",
        "data_interval_start": "2027-01-04T01:00:00+00:00",  # 10:00 KST, the previous fire
        "data_interval_end": "2027-01-04T01:30:00+00:00",
        "scheduled_for": None,
        "attempt": 2,
    }


def test_a_run_started_now_stands_for_its_start_time_over_an_empty_interval():
    job = handler_job("tests.fire_time_seen", queue=IN_PROCESS_QUEUE)
    before = database_now()

    execution = run_in_process(start(job))

    assert execution.status == ExecutionStatus.COMPLETED
    assert before <= execution.logical_time <= database_now()
    assert execution.data_interval_start == execution.data_interval_end == execution.logical_time
    assert execution.result["logical_time"] == execution.logical_time.isoformat()


def test_a_fire_stands_for_its_scheduled_time():
    # given: a fire row as beat writes it (the fire key, and a row of an older release
    # without the fire-time columns, which falls back to its scheduled time)
    job = handler_job("tests.fire_time_seen", queue=IN_PROCESS_QUEUE)
    schedule = schedule_create(job=job, kind="cron", cron_expression="0 3 * * *")
    fired = BatchLog.objects.create(
        job=job, schedule=schedule, scheduled_for=utc(2026, 1, 4, 3),
        trigger=Trigger.SCHEDULE, max_attempts=1, next_attempt_at=utc(2026, 1, 4, 3),
    )  # fmt: skip
    # when
    ran = run_in_process(fired)
    # then
    assert ran.status == ExecutionStatus.COMPLETED, (ran.status, ran.error)
    assert ran.result["scheduled_for"] == ran.result["logical_time"] == "2026-01-04T03:00:00+00:00"


def test_logical_time_must_be_aware():
    job = handler_job("tests.fire_time_seen")
    with pytest.raises(InvalidInput) as caught:
        operator.job_start(job_name=job.name, logical_time=datetime(2027, 1, 4, 10))
    assert "logical_time" in caught.value.field_errors


# --- a batch job: one instance per period -------------------------------------------------

_fail_once: set[str] = set()


def _period_tasklet(ctx):
    names = ("logical_time", "data_interval_start", "data_interval_end")
    ctx.job_context["period"] = [ctx.params[name].isoformat() for name in names]
    key = ctx.params["logical_time"].isoformat()
    if ctx.params.get("fail_once") and key not in _fail_once:
        _fail_once.add(key)
        raise NonRetryableError("fails the first time for this period")


@batch_job("tests.period", identifying=["source"])
def period_job():
    return JobBuilder().start(tasklet_step("process", _period_tasklet)).build()


def batch_period_start(logical_time: datetime | None, **params) -> BatchLog:
    if not BatchJob.objects.filter(name="tests.period").exists():
        job_create(name="tests.period", kind="batch", batch_job_name="tests.period",
                   max_attempts=1, queue=IN_PROCESS_QUEUE)  # fmt: skip
    return operator.job_start(
        job_name="tests.period", params={"source": "sales", **params}, logical_time=logical_time
    )


def test_two_periods_are_two_instances_and_a_restart_resumes_its_own():
    # given: the same parameters for two days; the first day fails once
    monday, tuesday = utc(2027, 1, 4), utc(2027, 1, 5)
    first = run_in_process(batch_period_start(monday, fail_once=True))
    other = run_in_process(batch_period_start(tuesday, fail_once=False))
    assert first.status == ExecutionStatus.FAILED
    assert other.status == ExecutionStatus.COMPLETED
    assert first.instance_key != other.instance_key
    # when: the failed day is restarted
    restarted = run_in_process(operator.execution_restart(execution_id=first.pk))
    # then: the same instance and period, now completed; the day cannot start again
    assert restarted.status == ExecutionStatus.COMPLETED
    assert restarted.instance_key == first.instance_key
    assert (restarted.logical_time, restarted.data_interval_end) == (monday, monday)
    assert restarted.execution_context["job"]["period"][0] == monday.isoformat()
    with pytest.raises(Conflict, match="already completed"):
        batch_period_start(monday, fail_once=True)


def test_without_a_logical_time_the_parameters_alone_identify_the_instance():
    first = run_in_process(batch_period_start(None, source="crm"))
    assert first.status == ExecutionStatus.COMPLETED
    with pytest.raises(Conflict, match="already completed"):
        batch_period_start(None, source="crm")


# --- an HTTP job fills its templates in, and the attempt keeps the request as sent --------


def test_http_templates_in_path_query_headers_and_body_are_sent_and_stored_resolved(httpserver):
    # given
    # (werkzeug decodes the path it matches: eu%2Fwest reads eu/west)
    httpserver.expect_request("/export/2027-01-04/eu/west").respond_with_json({"ok": True})
    url = httpserver.url_for("/export")
    job = http_job(
        url + '/{{ data_interval_start | tz:"Asia/Seoul" | date:"%Y-%m-%d" }}/{{ params.region }}'
        "?until={{ data_interval_end }}&run={{ execution_id }}",
        http_method="POST",
        http_headers=[
            {"name": "Authorization", "value": "Bearer {{ params.token }}", "secret": True},
            {"name": "X-Period", "value": '{{ logical_time | date:"%Y%m%dT%H" }}', "secret": False},
        ],
        http_body='{"job": {{ job_name | json }}, "attempt": {{ attempt }}, '
        '"from": {{ data_interval_start | json }}}',
        params={"region": "eu/west"},
    )
    schedule_create(job=job, kind="cron", cron_expression="0 0 * * *", timezone="Asia/Seoul")
    logical = datetime(2027, 1, 5, 0, 0, tzinfo=SEOUL)  # the fire for Jan 4 (KST)
    # when
    execution = run_in_process(operator.job_start(job_name=job.name, logical_time=logical,
                                                  params={"token": "s3cret"}))  # fmt: skip
    # then: the server saw every value filled in
    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    request, _ = httpserver.log[0]
    assert request.environ["REQUEST_URI"].startswith("/export/2027-01-04/eu%2Fwest?")
    assert request.args["until"] == "2027-01-04T15:00:00+00:00"
    assert request.args["run"] == str(execution.pk)
    assert request.headers["Authorization"] == "Bearer s3cret"
    assert request.headers["X-Period"] == "20270104T15"
    assert request.headers["Idempotency-Key"] == str(execution.pk)
    assert json.loads(request.get_data()) == {
        "job": job.name, "attempt": 1, "from": "2027-01-03T15:00:00+00:00",
    }  # fmt: skip
    # and the attempt stored it as sent, the secret masked
    stored = BatchAttempt.objects.get(execution=execution).request
    assert stored["method"] == "POST"
    assert stored["url"] == (
        f"{url}/2027-01-04/eu%2Fwest?until=2027-01-04T15%3A00%3A00%2B00%3A00&run={execution.pk}"
    )
    assert stored["headers"]["Authorization"] == SECRET_MASK
    assert stored["headers"]["X-Period"] == "20270104T15"
    assert stored["headers"]["X-Batchjobs-Attempt"] == "1"
    assert stored["body"] == request.get_data(as_text=True)
    assert "s3cret" not in str(stored)


def test_the_stored_body_is_an_excerpt(httpserver, settings):
    settings.BATCHJOBS_RESPONSE_EXCERPT_CHARS = 10
    httpserver.expect_request("/b").respond_with_data("ok")
    job = http_job(httpserver.url_for("/b"), http_method="POST", http_body="{{ job_name }}" * 5)

    execution = run_in_process(start(job))

    assert BatchAttempt.objects.get(execution=execution).request["body"] == (job.name * 5)[:10]


def test_a_parameter_the_run_lacks_fails_it_without_a_call_or_a_retry(httpserver):
    job = http_job(httpserver.url_for("/x") + "?day={{ params.day }}", max_attempts=3)

    execution = run_in_process(start(job))

    assert execution.status == ExecutionStatus.FAILED
    assert execution.attempts == 1
    assert "http_url: params.day has no value in this run" in execution.error
    assert httpserver.log == []
    attempt = BatchAttempt.objects.get(execution=execution)
    assert (attempt.status, attempt.retryable, attempt.request) == (
        AttemptStatus.FAILED,
        False,
        None,
    )


def test_a_restart_keeps_the_source_period(httpserver):
    httpserver.expect_ordered_request("/p").respond_with_data("down", status=500)
    httpserver.expect_ordered_request("/p").respond_with_data("up")
    job = http_job(httpserver.url_for("/p") + "?d={{ logical_time }}", max_attempts=1)
    logical = utc(2027, 1, 4, 12)
    failed = run_in_process(operator.job_start(job_name=job.name, logical_time=logical))
    assert failed.status == ExecutionStatus.FAILED

    restarted = run_in_process(operator.execution_restart(execution_id=failed.pk))

    assert restarted.status == ExecutionStatus.COMPLETED
    assert [request.args["d"] for request, _ in httpserver.log] == [logical.isoformat()] * 2
    assert restarted.data_interval_start == failed.data_interval_start


def test_a_manual_start_covers_the_time_since_the_jobs_latest_nominal_fire():
    job = handler_job("tests.fire_time_seen", queue=IN_PROCESS_QUEUE)
    schedule_create(job=job, kind="interval", interval_every=6, interval_unit="hours",
                    start_at=utc(2027, 1, 1))  # fmt: skip
    schedule_create(job=job, kind="cron", cron_expression="30 * * * *")
    schedule_create(job=job, kind="once", run_at=utc(2027, 1, 4, 11, 50))

    execution = operator.job_start(job_name=job.name, logical_time=utc(2027, 1, 4, 11, 59))

    assert execution.data_interval_start == utc(2027, 1, 4, 11, 30)  # the later of 11:30, 06:00
    assert execution.data_interval_end == utc(2027, 1, 4, 11, 59)
    assert execution.data_interval_end - execution.data_interval_start == timedelta(minutes=29)


@pytest.mark.parametrize(
    ("query", "statements"),
    [("?static=1", ["UPDATE"]), ("?day={{ params.day }}", ["SELECT", "UPDATE"])],
)
def test_an_attempt_reads_the_row_only_when_a_template_needs_it(httpserver, query, statements):
    # given: a claimed attempt (the hot path of the I/O lane)
    httpserver.expect_request("/s").respond_with_data("ok")
    job = http_job(
        httpserver.url_for("/s") + query,
        http_headers=[{"name": "Authorization", "value": "Bearer {{ job_name }}", "secret": True}],
    )
    claim = execution_claim(execution_id=start(job, day="mon").pk, worker="w", task_id="t")
    # when
    with CaptureQueriesContext(connection) as queries:
        outcome = run_http_job(
            claim.execution.job, execution_id=claim.execution.pk, attempt=claim.attempt,
            deadline=time.monotonic() + 5,
        )  # fmt: skip
    # then
    assert outcome.status == AttemptStatus.SUCCEEDED
    assert [query["sql"].split()[0] for query in queries.captured_queries] == statements
