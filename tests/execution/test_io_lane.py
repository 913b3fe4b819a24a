"""The I/O lane (issue 13) with real processes: a `celery worker -P gevent` running hundreds of
HTTP calls in one process against a local endpoint that holds them (tests/support/endpoint.py).

Each attempt's timeout and an operator's stop strike its own greenlet and no other; a lane
killed with 300 calls in flight loses nothing and calls each key again only once its attempt
was reaped; the lane's PostgreSQL sessions stay within its pool whatever the number of calls
in flight, and one statement beats for every attempt of the process."""

import signal
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from batchjobs.execution.lifecycle import (
    execution_claim,
    executions_heartbeat,
    executions_reap_lost,
)
from batchjobs.models import AttemptStatus, BatchAttempt, BatchLog, ExecutionStatus
from batchjobs.models.clock import database_now
from batchjobs.models.execution import FINAL_STATUSES
from batchjobs.services import operator
from tests.support.endpoint import Endpoint
from tests.support.engines import postgresql_only
from tests.support.factories import http_job, start
from tests.support.processes import (
    FAST_RECOVERY_ENV,
    Process,
    process_env,
    process_log_dir,
    queue_purge,
    start_lane,
    wait_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]
# The lanes of these tests consume a queue of their own: the session's lane (tests/conftest.py
# `worker`) must not take their runs, nor theirs its.
QUEUE = "test-io-lane"
HEARTBEAT_SECONDS = float(FAST_RECOVERY_ENV["BATCHJOBS_HEARTBEAT_SECONDS"])
HEARTBEAT_TIMEOUT_SECONDS = float(FAST_RECOVERY_ENV["BATCHJOBS_HEARTBEAT_TIMEOUT_SECONDS"])
LANE_DB_CONNECTIONS = 8
IN_FLIGHT = 300


@pytest.fixture(scope="module")
def endpoint(django_db_setup, django_db_blocker):
    server = Endpoint(process_log_dir())
    yield server
    server.stop()


@pytest.fixture
def lanes():
    """Start lanes on QUEUE (`start(**env)`); all are stopped, and QUEUE emptied, afterwards."""
    started: list[Process] = []

    def start_one(**env: str) -> Process:
        lane = start_lane(queues=QUEUE, **env)
        started.append(lane)
        return lane

    yield start_one
    for lane in started:
        lane.stop()
    queue_purge(QUEUE)


def label(name: str) -> str:
    """An endpoint label of this test run alone (the endpoint outlives each test)."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def ended(ids: list[int], *, timeout: float) -> list[BatchLog]:
    """Wait until every execution of `ids` has ended; return them, in the order of `ids`."""
    wait_until(
        lambda: BatchLog.objects.filter(pk__in=ids, status__in=FINAL_STATUSES).count() == len(ids),
        timeout=timeout,
        message=f"not all of {len(ids)} executions ended within {timeout}s: "
        f"{sorted(BatchLog.objects.filter(pk__in=ids).values_list('status', flat=True))[-5:]}",
    )
    by_id = BatchLog.objects.in_bulk(ids)
    return [by_id[pk] for pk in ids]


def attempt_rows(ids: list[int]) -> dict[int, list[BatchAttempt]]:
    """Each execution's attempt rows, in attempt order."""
    rows: dict[int, list[BatchAttempt]] = {pk: [] for pk in ids}
    for row in BatchAttempt.objects.filter(execution_id__in=ids).order_by("number"):
        rows[row.execution_id].append(row)
    return rows


def seconds(row: BatchAttempt) -> float:
    assert row.finished_at is not None, f"attempt {row.number} of {row.execution_id} not ended"
    return (row.finished_at - row.started_at).total_seconds()


def test_one_call_past_its_timeout_ends_timed_out_at_its_deadline_the_others_unaffected(
    endpoint, lanes
):
    lanes()
    slow_label, fast_label = label("slow"), label("fast")
    slow_job = http_job(
        endpoint.url(slow_label, 30), queue=QUEUE, timeout_seconds=2, max_attempts=1
    )
    fast_job = http_job(
        endpoint.url(fast_label, 0.5), queue=QUEUE, timeout_seconds=10, max_attempts=1
    )

    slow = start(slow_job)
    fast = [start(fast_job).pk for _ in range(100)]

    slow_run, *fast_runs = ended([slow.pk, *fast], timeout=40)
    attempts = attempt_rows([slow.pk, *fast])
    (slow_attempt,) = attempts[slow.pk]
    took = seconds(slow_attempt)
    fast_took = sorted(seconds(row) for pk in fast for row in attempts[pk])
    fast_calls = endpoint.stats(fast_label)
    print(
        f"\nslow attempt {took:.2f}s ({slow_attempt.error!r}); fast attempts "
        f"p50 {fast_took[50]:.2f}s max {fast_took[-1]:.2f}s, peak in flight "
        f"{fast_calls.peak_in_flight}"
    )
    # the slow call ended at its deadline, recorded TIMED_OUT (its only attempt: FAILED)
    assert slow_attempt.status == AttemptStatus.TIMED_OUT
    assert slow_run.status == ExecutionStatus.FAILED
    assert 2 <= took <= 2 + 1.5, f"the timed-out attempt took {took:.2f}s"
    assert len(endpoint.stats(slow_label).calls) == 1
    # the others ran beside it, unaffected: each completed after about its endpoint's delay
    assert {run.status for run in fast_runs} == {ExecutionStatus.COMPLETED}
    assert all(len(attempts[pk]) == 1 for pk in fast)
    assert fast_took[-1] < 2, f"a fast attempt took {fast_took[-1]:.2f}s"
    assert sorted(int(call.key) for call in fast_calls.calls) == sorted(fast)
    assert fast_calls.peak_in_flight >= 10  # in flight together, in one process


def test_a_stopped_call_ends_stopped_within_a_second_of_the_heartbeat_the_others_complete(
    endpoint, lanes
):
    lanes(BATCHJOBS_HEARTBEAT_SECONDS=str(HEARTBEAT_SECONDS))
    long_label, other_label = label("long"), label("other")
    long_job = http_job(endpoint.url(long_label, 30), queue=QUEUE, timeout_seconds=60)
    other_job = http_job(endpoint.url(other_label, 2), queue=QUEUE, timeout_seconds=10)
    long = start(long_job)
    others = [start(other_job).pk for _ in range(20)]
    wait_until(lambda: endpoint.stats(long_label).calls, timeout=20, message="no long call")

    asked_at = database_now()
    assert operator.execution_stop(execution_id=long.pk).status == ExecutionStatus.STOPPING

    (stopped,) = ended([long.pk], timeout=10)
    latency = (stopped.finished_at - asked_at).total_seconds()
    other_runs = ended(others, timeout=20)
    print(f"\nstopped {latency:.2f}s after the request (heartbeat every {HEARTBEAT_SECONDS}s)")
    assert stopped.status == ExecutionStatus.STOPPED
    assert [row.status for row in attempt_rows([long.pk])[long.pk]] == [AttemptStatus.STOPPED]
    # seen by the next heartbeat, then ended at once
    assert latency <= HEARTBEAT_SECONDS + 1.0, f"stopped {latency:.2f}s after the request"
    assert len(endpoint.stats(long_label).calls) == 1  # a stop is not retried
    assert {run.status for run in other_runs} == {ExecutionStatus.COMPLETED}
    assert all(run.attempts == 1 for run in other_runs)


def test_a_lane_killed_with_300_calls_in_flight_loses_none_and_calls_each_key_again_once(
    endpoint, lanes, beat
):
    lane = lanes()
    calls_label = label("killed")
    job = http_job(endpoint.url(calls_label, 15), queue=QUEUE, timeout_seconds=60, max_attempts=2)
    ids = [start(job).pk for _ in range(IN_FLIGHT)]
    wait_until(
        lambda: endpoint.stats(calls_label).in_flight == IN_FLIGHT,
        timeout=30, message=f"{IN_FLIGHT} calls were not in flight together",
    )  # fmt: skip
    # every attempt is alive: running, and beating
    alive = BatchLog.objects.filter(pk__in=ids, status=ExecutionStatus.STARTED, attempts=1)
    beats = dict(alive.values_list("pk", "heartbeat_at"))
    assert len(beats) == IN_FLIGHT
    assert min(beats.values()) >= database_now() - timedelta(seconds=HEARTBEAT_SECONDS * 4)

    killed_at = time.time()
    lane.kill(signal.SIGKILL)
    lane.popen.wait(10)
    lanes()

    runs = ended(ids, timeout=HEARTBEAT_TIMEOUT_SECONDS + 60)
    attempts = attempt_rows(ids)
    seen: dict[str, list] = {}
    for call in endpoint.stats(calls_label).calls:
        seen.setdefault(call.key, []).append(call)
    reaped_after = [
        (rows[0].finished_at - beats[pk]).total_seconds() for pk, rows in attempts.items()
    ]
    retried_after = [seen[str(pk)][1].arrived - killed_at for pk in ids]
    print(
        f"\nreaped {min(reaped_after):.1f}-{max(reaped_after):.1f}s after the last beat seen "
        f"before the kill; retries called {min(retried_after):.1f}-{max(retried_after):.1f}s "
        "after the kill"
    )
    # nothing lost: each execution completed at its second attempt, the first reaped
    assert {run.status for run in runs} == {ExecutionStatus.COMPLETED}
    for pk, rows in attempts.items():
        assert [row.status for row in rows] == [AttemptStatus.LOST, AttemptStatus.SUCCEEDED], pk
    # the endpoint saw attempt 1 then attempt 2 of each key, with the same key, and nothing else
    assert set(seen) == {str(pk) for pk in ids}
    assert all([call.attempt for call in calls] == ["1", "2"] for calls in seen.values())
    # no key called again while its first attempt lived: reaped only once its heartbeat was
    # stale, and called again only after that
    assert min(reaped_after) >= HEARTBEAT_TIMEOUT_SECONDS
    for pk, rows in attempts.items():
        retried = seen[str(pk)][1].arrived
        assert retried > rows[0].finished_at.timestamp(), f"{pk} called before it was reaped"
    assert min(retried_after) > HEARTBEAT_TIMEOUT_SECONDS - HEARTBEAT_SECONDS


@postgresql_only("it counts the lane's PostgreSQL sessions")
def test_300_calls_in_flight_hold_no_more_database_sessions_than_the_lane_pool(endpoint, lanes):
    application = label("lane-sessions")
    database_url = process_env()["DATABASE_URL"] + f"?application_name={application}"
    lanes(DATABASE_URL=database_url, BATCHJOBS_LANE_DB_CONNECTIONS=str(LANE_DB_CONNECTIONS))
    calls_label = label("pooled")
    job = http_job(endpoint.url(calls_label, 8), queue=QUEUE, timeout_seconds=60)

    def sessions() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = %s",
                [application],
            )
            return cursor.fetchone()[0]

    peak = 0
    ids = [start(job).pk for _ in range(IN_FLIGHT)]
    give_up = time.monotonic() + 60
    one_beat_for_all = False
    while BatchLog.objects.filter(pk__in=ids, status__in=FINAL_STATUSES).count() < IN_FLIGHT:
        assert time.monotonic() < give_up, "the calls did not all end"
        peak = max(peak, sessions())
        # every running attempt of the process beaten by one statement: one timestamp
        running = BatchLog.objects.filter(pk__in=ids, status=ExecutionStatus.STARTED)
        if running.count() == IN_FLIGHT:
            one_beat_for_all |= running.values("heartbeat_at").distinct().count() == 1
        time.sleep(0.05)
    calls = endpoint.stats(calls_label)
    print(f"\npeak {calls.peak_in_flight} calls in flight, peak {peak} PostgreSQL sessions")
    assert calls.peak_in_flight == IN_FLIGHT
    assert peak >= 1, "the lane's sessions were not recognised by their application name"
    assert peak <= LANE_DB_CONNECTIONS + 2
    assert one_beat_for_all, "the 300 running attempts never shared one heartbeat"
    assert set(BatchLog.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
        ExecutionStatus.COMPLETED
    }


@pytest.mark.django_db
def test_one_statement_beats_every_attempt_leaves_the_reaped_out_and_returns_stopping():
    job = http_job("http://127.0.0.1:9/never-called", queue=QUEUE)
    ids = [start(job).pk for _ in range(IN_FLIGHT)]
    for pk in ids:
        assert execution_claim(execution_id=pk, worker="lane", task_id=f"t{pk}")
    reaped, retried_elsewhere, stopping = ids[:3]
    # reaped: QUEUED again for its retry; retried elsewhere: reaped and claimed by another
    # worker as attempt 2 while this process still runs (and beats) attempt 1
    BatchLog.objects.filter(pk__in=[reaped, retried_elsewhere]).update(
        heartbeat_at=database_now() - timedelta(minutes=5)
    )
    assert executions_reap_lost() == 2
    assert execution_claim(execution_id=retried_elsewhere, worker="other", task_id="t2")
    operator.execution_stop(execution_id=stopping)
    long_ago = database_now() - timedelta(minutes=5)
    BatchLog.objects.filter(pk__in=ids).update(heartbeat_at=long_ago)

    with CaptureQueriesContext(connections["default"]) as queries:
        statuses = executions_heartbeat(dict.fromkeys(ids, 1))

    statements = [
        query["sql"] for query in queries.captured_queries
        if not query["sql"].upper().startswith(("SAVEPOINT", "RELEASE", "BEGIN", "COMMIT"))
    ]  # fmt: skip
    assert len(statements) == 1, statements
    beaten = set(ids) - {reaped, retried_elsewhere}
    assert set(statuses) == beaten
    assert statuses[stopping] == ExecutionStatus.STOPPING
    assert set(statuses.values()) == {ExecutionStatus.STARTED, ExecutionStatus.STOPPING}
    fresh = BatchLog.objects.filter(pk__in=ids, heartbeat_at__gt=long_ago)
    assert set(fresh.values_list("pk", flat=True)) == beaten
