"""The I/O lane (issue 13) with real processes: a `celery worker -P gevent` running hundreds of
HTTP calls in one process against local endpoints that hold them.

Each attempt's timeout and an operator's stop strike its own greenlet and no other; a lane
killed with 300 calls in flight loses nothing and calls each key again only once its attempt
was reaped; the lane's PostgreSQL sessions stay within its pool whatever the number of calls
in flight, and one statement beats for every attempt of the process."""

import signal
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
from tests.support.checker import check_invariants
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
from tests.support.sink import Sink

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]
# The lanes of these tests consume a queue of their own: the session's lane (tests/conftest.py
# `worker`) must not take their runs, nor theirs its.
QUEUE = "test-io-lane"
HEARTBEAT_SECONDS = float(FAST_RECOVERY_ENV["BATCHJOBS_HEARTBEAT_SECONDS"])
HEARTBEAT_TIMEOUT_SECONDS = float(FAST_RECOVERY_ENV["BATCHJOBS_HEARTBEAT_TIMEOUT_SECONDS"])
LANE_DB_CONNECTIONS = 8
IN_FLIGHT = 300
# How long 300 claims may take on a loaded 2-core machine (measured: 3 s idle, 14 s loaded).
RAMP_SECONDS = 60


@dataclass
class HeldCall:
    key: str  # the Idempotency-Key header
    attempt: str  # the X-Batchjobs-Attempt header
    arrived: float  # time.time(): the database's clock on this machine


class HoldingEndpoint:
    """A local endpoint that holds every first attempt until release() and answers the others
    at once, so that hundreds of calls stay in flight however long a loaded machine takes to
    start them all (the shared Endpoint answers after a fixed delay, which the ramp-up may
    outlast). A thread per call, each waiting on one Event: no work while held."""

    def __init__(self) -> None:
        self.calls: list[HeldCall] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self.released = threading.Event()
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                endpoint._handle(self)

            do_POST = do_GET  # noqa: N815

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 1024  # hundreds of connections at once

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/held"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def by_key(self) -> dict[str, list[HeldCall]]:
        """The calls of each key, in arrival order."""
        seen: dict[str, list[HeldCall]] = {}
        with self._lock:
            for call in self.calls:
                seen.setdefault(call.key, []).append(call)
        return seen

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        call = HeldCall(
            key=handler.headers.get("Idempotency-Key", ""),
            attempt=handler.headers.get("X-Batchjobs-Attempt", ""),
            arrived=time.time(),
        )
        with self._lock:
            self.calls.append(call)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if call.attempt == "1":
                self.released.wait(120)
            handler.send_response(200)
            handler.send_header("Content-Length", "2")
            handler.end_headers()
            handler.wfile.write(b"ok")
        except OSError:
            pass  # the client went away (a killed lane)
        finally:
            with self._lock:
                self.in_flight -= 1


@pytest.fixture(scope="module")
def endpoint(django_db_setup, django_db_blocker):
    """The shared gevent endpoint: calls answered after the delay in their URL."""
    server = Endpoint(process_log_dir())
    yield server
    server.stop()


@pytest.fixture
def holding():
    server = HoldingEndpoint()
    yield server
    server.close()


@pytest.fixture
def sink():
    """A threaded local endpoint with the hostile paths (a body trickling a byte a second)."""
    server = Sink()
    yield server
    server.close()


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
    executions = BatchLog.objects.filter(pk__in=ids)
    try:
        wait_until(
            lambda: executions.filter(status__in=FINAL_STATUSES).count() == len(ids),
            timeout=timeout,
        )
    except AssertionError:
        statuses = Counter(executions.values_list("status", flat=True))
        raise AssertionError(f"not all ended within {timeout}s: {dict(statuses)}") from None
    by_id = executions.in_bulk()
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


def late_allowed() -> float:
    """How late past its deadline an attempt may end in the lane. On PostgreSQL (measured
    0.03-0.24 s on a loaded machine) the lane's database calls yield to the other greenlets;
    SQLite's do not, and a write waiting for the lock another process holds stops the whole
    lane, its timers included (measured 0.7 s late)."""
    return 0.75 if connection.vendor == "postgresql" else 1.5


def all_in_flight(holding: HoldingEndpoint, ids: list[int]) -> float:
    """Wait until the first attempt of every execution of `ids` is held at `holding`; return
    how long that took."""
    began = time.monotonic()
    wait_until(
        lambda: holding.in_flight == len(ids),
        timeout=RAMP_SECONDS,
        message=f"{len(ids)} calls were not in flight together",
    )
    assert set(holding.by_key()) == {str(pk) for pk in ids}
    return time.monotonic() - began


def test_calls_past_their_timeout_end_timed_out_at_their_deadline_the_others_unaffected(
    endpoint, sink, lanes
):
    lanes()
    silent_label, fast_label = label("silent"), label("fast")
    # silent for 30 s: the client's read timeout ends it; trickling a byte a second: no read
    # times out, the greenlet's own time limit ends it
    silent_job, trickle_job = (
        http_job(url, queue=QUEUE, timeout_seconds=2, max_attempts=1)
        for url in (endpoint.url(silent_label, 30), sink.url("/trickle"))
    )
    fast_job = http_job(endpoint.url(fast_label, 0.5), queue=QUEUE, timeout_seconds=10)

    slow = [start(silent_job).pk, start(trickle_job).pk]
    fast = [start(fast_job).pk for _ in range(100)]

    runs = ended([*slow, *fast], timeout=40)
    attempts = attempt_rows([*slow, *fast])
    (silent, trickle) = (attempts[pk][0] for pk in slow)
    fast_took = sorted(seconds(row) for pk in fast for row in attempts[pk])
    fast_calls = endpoint.stats(fast_label)
    print(
        f"\ntimed out after {seconds(silent):.2f}s ({silent.error!r}) and "
        f"{seconds(trickle):.2f}s ({trickle.error!r}); fast attempts p50 {fast_took[50]:.2f}s "
        f"max {fast_took[-1]:.2f}s, peak {fast_calls.peak_in_flight} in flight"
    )
    # each slow call ended at its deadline, recorded TIMED_OUT (its only attempt: FAILED)
    for pk, row in zip(slow, (silent, trickle), strict=True):
        assert len(attempts[pk]) == 1
        assert row.status == AttemptStatus.TIMED_OUT, row.error
        assert 2 <= seconds(row) <= 2 + late_allowed(), f"{row.error}: took {seconds(row):.2f}s"
    assert trickle.error == "timed out after 2s"  # the limit's, not the client's
    assert {run.status for run in runs[:2]} == {ExecutionStatus.FAILED}
    assert len(endpoint.stats(silent_label).calls) == 1
    # the others ran beside them, unaffected: each completed after about its endpoint's delay
    assert {run.status for run in runs[2:]} == {ExecutionStatus.COMPLETED}
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
    holding, lanes, beat
):
    job = http_job(holding.url, queue=QUEUE, timeout_seconds=120, max_attempts=2)
    ids = [start(job).pk for _ in range(IN_FLIGHT)]
    lane = lanes()
    ramp = all_in_flight(holding, ids)
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
    seen = holding.by_key()
    reaped_after = [
        (rows[0].finished_at - beats[pk]).total_seconds() for pk, rows in attempts.items()
    ]
    retried_after = [seen[str(pk)][1].arrived - killed_at for pk in ids]
    print(
        f"\n{IN_FLIGHT} in flight {ramp:.1f}s after the lane started; reaped "
        f"{min(reaped_after):.1f}-{max(reaped_after):.1f}s after the last beat seen before the "
        f"kill; retries called {min(retried_after):.1f}-{max(retried_after):.1f}s after the kill"
    )
    # nothing lost: each execution completed at its second attempt, the first reaped
    assert {run.status for run in runs} == {ExecutionStatus.COMPLETED}
    for pk, rows in attempts.items():
        assert [row.status for row in rows] == [AttemptStatus.LOST, AttemptStatus.SUCCEEDED], pk
    # the endpoint saw attempt 1 then attempt 2 of each key, and nothing else
    assert set(seen) == {str(pk) for pk in ids}
    assert all([call.attempt for call in calls] == ["1", "2"] for calls in seen.values())
    # no key called again while its first attempt lived (until the kill): reaped only once
    # its heartbeat was stale, and called again only after that
    assert min(retried_after) > 0
    assert min(reaped_after) >= HEARTBEAT_TIMEOUT_SECONDS
    for pk, rows in attempts.items():
        retried = seen[str(pk)][1].arrived
        assert retried > rows[0].finished_at.timestamp(), f"{pk} called before it was reaped"
    check_invariants()


@postgresql_only("it ends the lane's PostgreSQL sessions from the server")
def test_runs_go_on_at_once_after_the_database_ended_the_lanes_pooled_sessions(endpoint, lanes):
    # given a lane whose pool holds idle sessions, as after a burst
    application = label("lane-dropped")
    database_url = process_env()["DATABASE_URL"] + f"?application_name={application}"
    lanes(DATABASE_URL=database_url, BATCHJOBS_LANE_DB_CONNECTIONS=str(LANE_DB_CONNECTIONS))
    name = label("dropped")
    job = http_job(endpoint.url(name, 0.2), queue=QUEUE)
    ended([start(job).pk for _ in range(40)], timeout=60)
    # when the database ends every one of them (a restart, a failover, an operator)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s",
            [application],
        )
        assert cursor.fetchone()[0] >= 1
    # then the next runs are claimed on fresh sessions, not left for the relay (a minute)
    runs = ended([start(job).pk for _ in range(2 * LANE_DB_CONNECTIONS)], timeout=20)
    assert {run.status for run in runs} == {ExecutionStatus.COMPLETED}
    assert len(endpoint.stats(name).calls) == 40 + 2 * LANE_DB_CONNECTIONS


@postgresql_only("it counts the lane's PostgreSQL sessions")
def test_300_calls_in_flight_hold_no_more_database_sessions_than_the_lane_pool(holding, lanes):
    application = label("lane-sessions")
    database_url = process_env()["DATABASE_URL"] + f"?application_name={application}"
    lanes(DATABASE_URL=database_url, BATCHJOBS_LANE_DB_CONNECTIONS=str(LANE_DB_CONNECTIONS))
    job = http_job(holding.url, queue=QUEUE, timeout_seconds=120)
    counted: list[int] = []

    def counting_sessions(predicate):
        """`predicate`, the lane's sessions counted each time it is asked."""

        def counted_too() -> bool:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name = %s",
                    [application],
                )
                counted.append(cursor.fetchone()[0])
            return predicate()

        return counted_too

    began = time.monotonic()
    ids = [start(job).pk for _ in range(IN_FLIGHT)]
    executions = BatchLog.objects.filter(pk__in=ids)
    wait_until(counting_sessions(lambda: holding.in_flight == IN_FLIGHT), timeout=RAMP_SECONDS)
    ramp = time.monotonic() - began
    # every running attempt of the process beaten by one statement: one timestamp for all
    running = executions.filter(status=ExecutionStatus.STARTED)

    def one_beat_for_all() -> bool:
        return (
            running.count() == IN_FLIGHT and running.values("heartbeat_at").distinct().count() == 1
        )

    wait_until(one_beat_for_all, timeout=10, message="the attempts never shared one heartbeat")
    # the outcomes all at once: the pool's busiest moment
    holding.release()
    released = time.monotonic()
    done = executions.filter(status__in=FINAL_STATUSES)
    wait_until(counting_sessions(lambda: done.count() == IN_FLIGHT), timeout=60, interval=0.05)
    drain = time.monotonic() - released
    print(
        f"\n{holding.peak_in_flight} calls in flight {ramp:.1f}s after the first start, all ended "
        f"{drain:.1f}s after their release; PostgreSQL sessions of the lane: peak "
        f"{max(counted)} over {len(counted)} samples"
    )
    assert holding.peak_in_flight == IN_FLIGHT
    assert 1 <= max(counted) <= LANE_DB_CONNECTIONS + 2
    assert set(executions.values_list("status", flat=True)) == {ExecutionStatus.COMPLETED}


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
