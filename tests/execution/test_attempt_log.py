"""Per-attempt log lines: what a run logs is kept on its attempt, in order, capped, secrets
masked, without mixing attempts that run at once in one process, and at no cost to attempts
that log nothing."""

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import gevent
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batchjobs.execution import attempt_log as capture
from batchjobs.execution.attempt_log import LINE_MAX_CHARS, attempt_log, attempt_log_purge
from batchjobs.execution.retention import execution_purge_finished
from batchjobs.handlers.registry import HandlerContext, handler
from batchjobs.models import (
    AttemptLogLine,
    AttemptStatus,
    BatchAttempt,
    BatchJob,
    BatchLog,
    ExecutionStatus,
)
from batchjobs.rules.masking import SECRET_MASK
from tests.support.factories import finished, handler_job, http_job, start
from tests.support.runs import IN_PROCESS_QUEUE, run_in_process

module_logger = logging.getLogger("tests.attempt_log.module")


@handler(
    "tests.attempt_log.chatty",
    schema={
        "type": "object",
        "properties": {
            "lines": {"type": "integer"},
            "api_key": {"type": "string"},
            "fail": {"type": "boolean"},
            "long": {"type": "boolean"},
        },
    },
)
def chatty(
    ctx: HandlerContext, *, lines: int = 2, api_key: str = "", fail: bool = False, long=False
) -> None:
    ctx.log.debug("not kept: below INFO")
    for number in range(1, lines + 1):
        ctx.log.info("line %s of %s", number, lines)
    if api_key:
        module_logger.warning("calling the service with key=%s", api_key)
    if long:
        ctx.log.info("x" * (LINE_MAX_CHARS * 2))
    if fail:
        try:
            raise ValueError("the input is broken")
        except ValueError:
            ctx.log.exception("could not go on")
            raise


@handler("tests.attempt_log.live", schema={"type": "object"})
def live(ctx: HandlerContext) -> dict:
    """Logs a line, then waits until it can see it in the database (the writer's batch)."""
    ctx.log.info("started")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if AttemptLogLine.objects.filter(attempt__execution_id=ctx.execution_id).exists():
            return {"seen_after": round(5 - (deadline - time.monotonic()), 2)}
        time.sleep(0.05)
    return {"seen_after": None}


@handler("tests.attempt_log.silent", schema={"type": "object"})
def silent(ctx: HandlerContext) -> None:
    """Logs nothing."""


def _lines(execution: BatchLog, number: int = 1) -> list[AttemptLogLine]:
    return list(
        AttemptLogLine.objects.filter(
            attempt__execution=execution, attempt__number=number
        ).order_by("number")
    )


@pytest.mark.django_db
def test_handler_lines_are_kept_in_order_with_the_traceback():
    # given
    execution = start(handler_job("tests.attempt_log.chatty", max_attempts=1), lines=3, fail=True)
    # when
    execution = run_in_process(execution)
    # then
    assert execution.status == ExecutionStatus.FAILED
    lines = _lines(execution)
    assert [line.number for line in lines] == [1, 2, 3, 4]
    assert [line.message for line in lines[:3]] == ["line 1 of 3", "line 2 of 3", "line 3 of 3"]
    assert all(line.logger == "batchjobs.handler.tests.attempt_log.chatty" for line in lines)
    assert lines[0].level == logging.INFO
    failure = lines[3]
    assert failure.level == logging.ERROR
    assert failure.message.startswith("could not go on\nTraceback (most recent call last):")
    assert "ValueError: the input is broken" in failure.message
    assert not any("below INFO" in line.message for line in lines)
    assert execution.attempt_rows.get().log_lines_dropped == 0


@pytest.mark.django_db
def test_each_attempt_keeps_its_own_lines():
    execution = start(handler_job("tests.attempt_log.chatty", max_attempts=2), lines=1, fail=True)
    run_in_process(execution, until_ended=True)
    assert [line.message for line in _lines(execution, 1)][0] == "line 1 of 1"
    assert [line.number for line in _lines(execution, 2)] == [1, 2]


@pytest.mark.django_db
def test_lines_past_the_cap_are_counted_and_long_lines_cut(settings):
    # given
    settings.BATCHJOBS_ATTEMPT_LOG_MAX_LINES = 5
    execution = start(handler_job("tests.attempt_log.chatty"), lines=12)
    # when
    execution = run_in_process(execution)
    # then
    assert execution.status == ExecutionStatus.COMPLETED
    assert len(_lines(execution)) == 5
    assert execution.attempt_rows.get().log_lines_dropped == 7
    # and a long line
    settings.BATCHJOBS_ATTEMPT_LOG_MAX_LINES = 1000
    execution = run_in_process(start(handler_job("tests.attempt_log.chatty"), lines=0, long=True))
    (line,) = _lines(execution)
    assert len(line.message) == LINE_MAX_CHARS
    assert line.message.endswith(capture.CUT_MARK)


@pytest.mark.django_db
def test_the_cap_setting_is_bounded(settings):
    settings.BATCHJOBS_ATTEMPT_LOG_MAX_LINES = -5
    assert capture.max_lines() == 0
    settings.BATCHJOBS_ATTEMPT_LOG_MAX_LINES = 10**12
    assert capture.max_lines() == capture.MAX_LINES_CEILING


@pytest.mark.django_db
def test_secret_params_and_secret_header_values_never_reach_a_line():
    # given: a secret-looking parameter the handler logs
    secret = "sk-live-0123456789"
    execution = start(handler_job("tests.attempt_log.chatty"), lines=0, api_key=secret)
    # when
    execution = run_in_process(execution)
    # then
    (line,) = _lines(execution)
    assert line.message == f"calling the service with key={SECRET_MASK}"
    assert not AttemptLogLine.objects.filter(message__contains=secret).exists()


@pytest.mark.django_db
def test_a_secret_header_value_is_masked_in_any_line_of_its_job(httpserver):
    # given: a job whose secret header value a library would quote in a message
    httpserver.expect_request("/ok").respond_with_data("ok")
    job = http_job(
        httpserver.url_for("/ok"),
        http_headers=[{"name": "Authorization", "value": "Bearer tok-42-xyz", "secret": True}],
    )
    execution = start(job)
    BatchAttempt.objects.create(execution=execution, number=1, started_at=timezone.now())
    job = BatchJob.objects.get(pk=job.pk)  # as a worker reads it: the value encrypted
    assert "tok-42-xyz" not in str(job.http_headers)
    # when
    with attempt_log(execution_id=execution.pk, attempt=1, job=job, params={}):
        logging.getLogger("urllib3.example").warning("sent Authorization: Bearer tok-42-xyz")
    # then
    (line,) = _lines(execution)
    assert line.message == f"sent Authorization: {SECRET_MASK}"


@pytest.mark.django_db
def test_http_attempts_log_the_call_and_the_reason_of_a_retry(httpserver):
    httpserver.expect_ordered_request("/flaky", method="POST").respond_with_data("no", status=503)
    httpserver.expect_ordered_request("/flaky", method="POST").respond_with_data("fine")
    job = http_job(httpserver.url_for("/flaky"), http_method="POST", max_attempts=2)
    execution = run_in_process(start(job), until_ended=True)

    assert execution.status == ExecutionStatus.COMPLETED
    first = [line.message for line in _lines(execution, 1)]
    url = httpserver.url_for("/flaky")
    assert first[0].startswith(f"POST {url} → 503 in ")
    assert first[0].endswith(" ms")
    assert first[1] == "HTTP 503, expected 200-299; another attempt follows if any is left"
    assert _lines(execution, 1)[1].level == logging.WARNING
    (second,) = [line.message for line in _lines(execution, 2)]
    assert second.startswith(f"POST {url} → 200 in ")


@pytest.mark.django_db
def test_an_http_redirect_is_named_in_the_line(httpserver):
    httpserver.expect_request("/old").respond_with_data(
        "", status=302, headers={"Location": httpserver.url_for("/new")}
    )
    httpserver.expect_request("/new").respond_with_data("here")
    execution = run_in_process(start(http_job(httpserver.url_for("/old"))))
    (line,) = [line.message for line in _lines(execution)]
    assert line.endswith(f"(after 1 redirect, to {httpserver.url_for('/new')})")


@pytest.mark.django_db
def test_an_attempt_that_logs_nothing_costs_no_query():
    execution = start(handler_job("tests.attempt_log.silent"))
    with CaptureQueriesContext(connection) as queries:
        execution = run_in_process(execution)
    assert execution.status == ExecutionStatus.COMPLETED
    table = AttemptLogLine._meta.db_table
    # (the claim's INSERT of the attempt names log_lines_dropped: its default)
    written = [
        q["sql"] for q in queries if table in q["sql"] or '"log_lines_dropped" =' in q["sql"]
    ]
    assert not written


@pytest.mark.django_db
def test_a_failed_write_of_lines_does_not_fail_the_run(caplog):
    # given: a line of number 1 already there, so that the attempt's first batch is refused
    execution = start(handler_job("tests.attempt_log.chatty"), lines=2)
    job = BatchJob.objects.get(pk=execution.job_id)
    attempt = BatchAttempt.objects.create(execution=execution, number=1, started_at=timezone.now())
    AttemptLogLine.objects.create(
        attempt=attempt, number=1, logged_at=timezone.now(), level=20, message="there before"
    )
    # when
    with caplog.at_level(logging.WARNING, logger=capture.__name__):
        with attempt_log(execution_id=execution.pk, attempt=1, job=job, params={}):
            logging.getLogger("tests.any").info("a line")
    # then: the connection is still usable, the failure logged
    assert [line.message for line in _lines(execution)] == ["there before"]
    assert "log line(s) could not be written" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_lines_reach_the_database_while_the_attempt_runs():
    job = handler_job("tests.attempt_log.live", queue=IN_PROCESS_QUEUE)
    execution = run_in_process(start(job))
    assert execution.status == ExecutionStatus.COMPLETED
    # Written by the writer thread about FLUSH_SECONDS after the line, not at the end.
    assert execution.result["seen_after"] is not None
    assert execution.result["seen_after"] < capture.FLUSH_SECONDS + 1.5


def _attempts(count: int) -> list[tuple[BatchLog, BatchJob]]:
    job = handler_job("tests.attempt_log.silent", queue=IN_PROCESS_QUEUE)
    runs = []
    for _ in range(count):
        execution = start(job)
        BatchAttempt.objects.create(execution=execution, number=1, started_at=timezone.now())
        runs.append((execution, job))
    return runs


@pytest.mark.django_db(transaction=True)
def test_attempts_in_threads_of_one_process_do_not_mix_their_lines():
    runs = _attempts(4)
    barrier = threading.Barrier(len(runs))

    def run(execution: BatchLog, job: BatchJob) -> None:
        with attempt_log(execution_id=execution.pk, attempt=1, job=job, params={}):
            for number in range(20):
                barrier.wait() if number == 0 else time.sleep(0.001)
                logging.getLogger("tests.shared").info("run %s line %s", execution.pk, number)

    threads = [threading.Thread(target=run, args=run_args) for run_args in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    connection.close()  # this thread's view is fresh
    for execution, _ in runs:
        messages = [line.message for line in _lines(execution)]
        assert messages == [f"run {execution.pk} line {n}" for n in range(20)]


@pytest.mark.django_db(transaction=True)
def test_attempts_in_greenlets_of_one_process_do_not_mix_their_lines():
    # The I/O lane runs many attempts as greenlets of one thread.
    runs = _attempts(3)
    logs = []

    def run(execution: BatchLog, job: BatchJob) -> None:
        with attempt_log(execution_id=execution.pk, attempt=1, job=job, params={}) as log:
            logs.append(log)
            for number in range(5):
                logging.getLogger("tests.shared").info("run %s line %s", execution.pk, number)
                gevent.sleep(0)  # the others log meanwhile

    # Collect the lines without writing them from greenlets sharing this thread's connection.
    written: dict[int, list[str]] = {}
    original = capture._lines_insert
    capture._lines_insert = lambda execution_id, attempt, lines: written.setdefault(
        execution_id, []
    ).extend(line.message for line in lines)
    try:
        gevent.joinall([gevent.spawn(run, *run_args) for run_args in runs])
    finally:
        capture._lines_insert = original
    for execution, _ in runs:
        assert written[execution.pk] == [f"run {execution.pk} line {n}" for n in range(5)]


@pytest.mark.django_db
def test_the_selector_reads_after_a_number():
    from batchjobs.selectors.attempt_log import attempt_log_lines

    execution = run_in_process(start(handler_job("tests.attempt_log.chatty"), lines=7))
    attempt = execution.attempt_rows.get()
    assert [line.number for line in attempt_log_lines(attempt.pk)] == list(range(1, 8))
    assert [line.number for line in attempt_log_lines(attempt.pk, after_number=3, limit=2)] == [
        4,
        5,
    ]
    assert attempt_log_lines(attempt.pk, after_number=7) == []
    assert len(attempt_log_lines(attempt.pk, limit=10**9)) == 7  # bounded, not an error
    assert len(attempt_log_lines(attempt.pk, after_number=10**30)) == 0


@pytest.mark.django_db
def test_retention_deletes_lines_in_bounded_statements():
    # given: expired executions with 25,000 lines between them
    job = handler_job("tests.attempt_log.silent")
    old = timezone.now() - timedelta(days=400)
    executions = [finished(job, ExecutionStatus.COMPLETED) for _ in range(5)]
    BatchLog.objects.filter(pk__in=[e.pk for e in executions]).update(created_at=old)
    for execution in executions:
        attempt = BatchAttempt.objects.create(
            execution=execution, number=1, started_at=old, status=AttemptStatus.SUCCEEDED
        )
        AttemptLogLine.objects.bulk_create(
            AttemptLogLine(attempt=attempt, number=n, logged_at=old, level=20, message="x" * 80)
            for n in range(1, 5001)
        )
    kept = finished(job, ExecutionStatus.COMPLETED)
    kept_attempt = BatchAttempt.objects.create(
        execution=kept, number=1, started_at=timezone.now(), status=AttemptStatus.SUCCEEDED
    )
    AttemptLogLine.objects.create(
        attempt=kept_attempt, number=1, logged_at=datetime.now(UTC), level=20, message="kept"
    )
    # when
    table = AttemptLogLine._meta.db_table
    started = time.monotonic()
    with CaptureQueriesContext(connection) as queries:
        deleted = execution_purge_finished(older_than=timedelta(days=30))
    elapsed = time.monotonic() - started
    print(f"\npurged 5 executions and 25,000 log lines in {elapsed:.2f}s")
    # then
    assert deleted == 5
    assert list(AttemptLogLine.objects.values_list("message", flat=True)) == ["kept"]
    line_deletes = [q["sql"] for q in queries if q["sql"].startswith(f'DELETE FROM "{table}"')]
    # Three batches of at most PURGE_BATCH_LINES, then the cascade's statement finding none.
    assert 3 <= len(line_deletes) <= 4
    assert elapsed < 10, elapsed


@pytest.mark.django_db
def test_purge_of_executions_without_lines_is_one_query():
    execution = finished(handler_job("tests.attempt_log.silent"), ExecutionStatus.COMPLETED)
    with CaptureQueriesContext(connection) as queries:
        assert attempt_log_purge(execution_ids=[execution.pk]) == 0
    assert len(queries) == 1
