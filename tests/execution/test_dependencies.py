"""Downstream runs started by an upstream's end: conditions, fan-in, exactly once (DESIGN.md §4,
invariant 13), and what is handed on."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from batchjobs.execution.dependencies import (
    UPSTREAM_RESULT_MAX_BYTES,
    dependents_start,
    fan_in_start_key,
)
from batchjobs.execution.lifecycle import (
    execution_set_abandoned,
    execution_stop_request,
    executions_reap_lost,
)
from batchjobs.handlers.registry import HandlerContext, handler
from batchjobs.models import BatchLog, ExecutionStatus, Trigger, UpstreamMode
from batchjobs.services.dependencies import dependency_create
from batchjobs.services.jobs import job_set_enabled, job_update
from tests.support.factories import finished, handler_job, start
from tests.support.runs import run_in_process

pytestmark = pytest.mark.django_db

SEEN: dict[int, dict] = {}


@handler(
    "tests.dependency_echo",
    schema={
        "type": "object",
        "properties": {"size": {"type": "integer"}, "upstream": {"type": "object"}},
        "additionalProperties": False,
    },
)
def dependency_echo(ctx: HandlerContext, *, size: int = 0, upstream: dict | None = None) -> dict:
    """Returns `size` characters; records the upstream it was told of."""
    SEEN[ctx.execution_id] = {"upstream": upstream, "logical_time": ctx.logical_time}
    return {"text": "x" * size}


def downstream_of(upstream_execution: BatchLog) -> list[BatchLog]:
    return list(BatchLog.objects.filter(triggered_by=upstream_execution).order_by("pk"))


def test_a_completed_run_starts_its_success_downstream_with_its_time_and_result():
    # given
    extract = handler_job("tests.dependency_echo", params={"size": 3})
    load = handler_job("tests.dependency_echo")
    edge = dependency_create(upstream=extract, downstream=load, condition="success")
    execution = start(extract)
    logical = datetime(2027, 1, 4, 0, 0, tzinfo=UTC)
    BatchLog.objects.filter(pk=execution.pk).update(
        logical_time=logical,
        data_interval_start=logical - timedelta(days=1),
        data_interval_end=logical,
    )

    # when
    ended = run_in_process(execution)

    # then
    assert ended.status == ExecutionStatus.COMPLETED
    [started] = downstream_of(ended)
    assert started.job == load
    assert started.status == ExecutionStatus.QUEUED
    assert started.trigger == Trigger.DEPENDENCY
    assert started.dependency == edge
    assert started.start_key == f"dep:{edge.pk}:{ended.pk}"
    assert started.logical_time == logical
    assert started.data_interval_start == logical - timedelta(days=1)
    assert started.data_interval_end == logical
    assert started.params["upstream"] == {
        "execution_id": ended.pk,
        "job": extract.name,
        "status": "COMPLETED",
        "logical_time": "2027-01-04T00:00:00+00:00",
        "result": {"text": "xxx"},
    }
    # the downstream handler is called with what it declares
    run_in_process(started)
    assert SEEN[started.pk]["upstream"]["result"] == {"text": "xxx"}
    assert SEEN[started.pk]["logical_time"] == logical


def test_a_handler_that_does_not_declare_upstream_runs_without_it():
    upstream = handler_job("noop")
    downstream = handler_job("noop")  # its schema refuses any parameter
    dependency_create(upstream=upstream, downstream=downstream)
    [started] = downstream_of(run_in_process(start(upstream)))

    ended = run_in_process(started)

    assert ended.status == ExecutionStatus.COMPLETED, ended.error
    assert "upstream" in ended.params  # the record keeps what it was handed


@pytest.mark.parametrize(
    ("handler_name", "params", "started_by"),
    [
        ("noop", {}, {"success", "always"}),
        ("fail", {"retryable": False}, {"failure", "always"}),
    ],
)
def test_each_condition_starts_on_its_ends(handler_name, params, started_by):
    upstream = handler_job(handler_name, params=params, max_attempts=1)
    downstreams = {
        condition: handler_job("noop", name=f"on-{condition}-{handler_name}")
        for condition in ("success", "failure", "always")
    }
    for condition, downstream in downstreams.items():
        dependency_create(upstream=upstream, downstream=downstream, condition=condition)

    ended = run_in_process(start(upstream))

    assert {run.dependency.condition for run in downstream_of(ended)} == started_by


def test_a_retried_attempt_starts_nothing_until_the_run_ends():
    upstream = handler_job("fail", params={"succeed_on_attempt": 2}, max_attempts=2)
    downstream = handler_job("noop")
    dependency_create(upstream=upstream, downstream=downstream, condition="always")
    execution = start(upstream)

    after_first = run_in_process(execution)
    assert after_first.status == ExecutionStatus.QUEUED
    assert downstream_of(after_first) == []

    assert run_in_process(execution).status == ExecutionStatus.COMPLETED
    assert len(downstream_of(execution)) == 1


def test_a_queued_run_stopped_by_an_operator_starts_only_always():
    upstream = handler_job("noop")
    on_success, always = handler_job("noop"), handler_job("noop")
    dependency_create(upstream=upstream, downstream=on_success, condition="success")
    dependency_create(upstream=upstream, downstream=always, condition="always")
    execution = start(upstream)

    execution_stop_request(execution_id=execution.pk)

    assert [run.job for run in downstream_of(execution)] == [always]


def test_a_skipped_fire_starts_nothing():
    upstream = handler_job("noop")
    dependency_create(upstream=upstream, downstream=handler_job("noop"), condition="always")
    skipped = finished(upstream, ExecutionStatus.SKIPPED)

    assert dependents_start(execution_id=skipped.pk) == []
    assert downstream_of(skipped) == []


def test_the_start_is_exactly_once_under_a_repeated_end():
    upstream = handler_job("fail", params={"retryable": False}, max_attempts=1)
    downstream = handler_job("noop")
    dependency_create(upstream=upstream, downstream=downstream, condition="always")
    ended = run_in_process(start(upstream))
    assert ended.status == ExecutionStatus.FAILED

    # the end hook called again, and the FAILED run abandoned (ABANDONED meets "always" too)
    assert dependents_start(execution_id=ended.pk) == []
    execution_set_abandoned(execution_id=ended.pk)

    assert len(downstream_of(ended)) == 1


def test_a_disabled_downstream_job_gets_its_run_recorded_skipped():
    upstream, downstream = handler_job("noop"), handler_job("noop")
    dependency_create(upstream=upstream, downstream=downstream)
    job_set_enabled(job=downstream, enabled=False)

    [run] = downstream_of(run_in_process(start(upstream)))

    assert run.status == ExecutionStatus.SKIPPED
    assert downstream.name in run.error
    assert run.finished_at is not None


def test_an_overlap_policy_is_taken_from_the_downstream_job():
    upstream = handler_job("noop")
    downstream = handler_job("noop", overlap_policy="skip")
    dependency_create(upstream=upstream, downstream=downstream)

    [run] = downstream_of(run_in_process(start(upstream)))

    assert run.exclusive is True  # the claim declines it while another run of it runs


def test_a_large_result_is_left_out_of_what_is_handed_on():
    upstream = handler_job("tests.dependency_echo", params={"size": UPSTREAM_RESULT_MAX_BYTES})
    dependency_create(upstream=upstream, downstream=handler_job("noop"))

    [run] = downstream_of(run_in_process(start(upstream)))

    assert run.params["upstream"]["result"] is None
    assert run.params["upstream"]["result_truncated"] is True


def test_a_run_the_reaper_ends_starts_its_failure_downstream():
    upstream = handler_job("noop", max_attempts=1)
    downstream = handler_job("noop")
    dependency_create(upstream=upstream, downstream=downstream, condition="failure")
    execution = start(upstream)
    BatchLog.objects.filter(pk=execution.pk).update(
        status=ExecutionStatus.STARTED,
        attempts=1,
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )

    assert executions_reap_lost() == 1

    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED
    assert [run.job for run in downstream_of(execution)] == [downstream]


# --- fan-in --------------------------------------------------------------------------------


def fan_in(*, conditions=("success", "success")):
    a, b = handler_job("noop"), handler_job("noop")
    c = handler_job("noop")
    job_update(job=c, upstream_mode=UpstreamMode.ALL)
    for upstream, condition in zip((a, b), conditions, strict=True):
        dependency_create(upstream=upstream, downstream=c, condition=condition)
    return a, b, c


def ended_at(job, status, logical_time) -> BatchLog:
    run = finished(job, status, logical_time=logical_time)
    dependents_start(execution_id=run.pk)
    return run


def test_fan_in_starts_once_both_upstreams_completed_for_the_same_logical_time():
    a, b, c = fan_in()
    monday = datetime(2027, 1, 4, tzinfo=UTC)

    ended_at(a, ExecutionStatus.COMPLETED, monday)
    assert not c.executions.exists()  # b has not ended yet
    last = ended_at(b, ExecutionStatus.COMPLETED, monday)

    [run] = c.executions.all()
    assert run.start_key == fan_in_start_key(downstream_id=c.pk, logical_time=monday)
    assert run.triggered_by == last
    assert run.logical_time == monday
    assert [summary["job"] for summary in run.params["upstreams"]] == sorted([a.name, b.name])
    # a repeated end, or a restart of one upstream for the same time, starts nothing more
    ended_at(a, ExecutionStatus.COMPLETED, monday)
    assert c.executions.count() == 1


def test_fan_in_does_not_join_two_logical_times():
    a, b, c = fan_in()
    monday = datetime(2027, 1, 4, tzinfo=UTC)

    ended_at(a, ExecutionStatus.COMPLETED, monday)
    ended_at(b, ExecutionStatus.COMPLETED, monday + timedelta(days=1))

    assert not c.executions.exists()


def test_fan_in_waits_for_each_edge_s_own_condition():
    a, b, c = fan_in(conditions=("success", "failure"))
    monday = datetime(2027, 1, 4, tzinfo=UTC)

    ended_at(a, ExecutionStatus.COMPLETED, monday)
    ended_at(b, ExecutionStatus.COMPLETED, monday)  # b's edge asks for a failure
    assert not c.executions.exists()
    ended_at(b, ExecutionStatus.FAILED, monday)

    assert c.executions.count() == 1


# --- racing callers (PostgreSQL: real row locks between sessions) ---------------------------

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="two sessions writing at once: SQLite has one writer, so there is no race to lose",
)


def in_threads(*calls) -> None:
    """Run each call in a thread of its own (a database session each), released together."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call) -> None:
        try:
            barrier.wait()
            call()
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_two_racing_callers_start_one_downstream_run():
    upstream, downstream = handler_job("noop"), handler_job("noop")
    dependency_create(upstream=upstream, downstream=downstream)
    ended = finished(upstream, ExecutionStatus.COMPLETED)

    in_threads(*[lambda: dependents_start(execution_id=ended.pk)] * 4)

    assert downstream.executions.count() == 1


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_fan_in_upstreams_ending_at_once_start_it_exactly_once():
    from django.db import transaction

    for _ in range(5):  # each round a new logical time: the race is lost in some rounds if at all
        a, b, c = fan_in()
        monday = datetime(2027, 1, 4, tzinfo=UTC)
        runs = [finished(job, ExecutionStatus.STARTED, logical_time=monday) for job in (a, b)]

        def end(run: BatchLog) -> None:
            with transaction.atomic():  # as a finish does: the status and the start together
                BatchLog.objects.filter(pk=run.pk).update(status=ExecutionStatus.COMPLETED)
                dependents_start(execution_id=run.pk)

        in_threads(*[lambda run=run: end(run) for run in runs])

        assert c.executions.count() == 1
