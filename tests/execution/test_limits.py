"""Limits under real workers, counted where the calls land (issue #13, DESIGN.md §4.12): runs at
once per target host, per job and per queue, calls per second per target host, and both on one
host, each enforced across two worker processes; a limit raised while executions wait; a worker
killed while it holds the slots. And the price of the check: nothing while no limit exists.

The calls go to tests/support/endpoint.py, which records each call's arrival and answer and
the peak in flight per label; every job of a test calls one label, so the endpoint's peak is
the host's. The workers are started here, on queues of this module. Beat runs from the first
rate test on (its relay sends a run held by a rate at its start); the 30 s net after which it
would send a run held for a slot is longer than any test here, so such a run that starts does
so because a run's end (or the limit's change) woke it.
"""

import re
import time
import uuid
from collections import Counter
from collections.abc import Iterable

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.db.models.functions import Now
from django.test.utils import CaptureQueriesContext

from batchjobs.execution.lifecycle import execution_claim, execution_claim_within_limits
from batchjobs.execution.limits import (
    HELD_RECHECK_SECONDS,
    LIMITS_REFRESH_SECONDS,
    RATE_SLICES,
    RATE_WINDOW_SECONDS,
    execution_hold,
    execution_limits,
    held_for_a_slot,
    held_recheck,
    held_wake_after_run,
    limit_changed,
    limits_forget,
    rate_reason,
    rate_reserve,
    running_reason,
)
from batchjobs.models import BatchJob, BatchLog, ExecutionStatus, LimitScope, RunLimit
from batchjobs.models.execution import FINAL_STATUSES
from batchjobs.services.limits import limit_create, limit_update
from tests.support.endpoint import Call, Endpoint
from tests.support.factories import http_job, start
from tests.support.processes import (
    Process,
    process_env,
    process_log_dir,
    start_lane,
    wait_until,
    worker_command,
)
from tests.support.runs import IN_PROCESS_QUEUE

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

HOST = "127.0.0.1"
# Queues of this module: the two lanes consume the HTTP queue and LANE_QUEUE (the queue limit's),
# the two prefork workers PREFORK_QUEUE; the victim of the kill test KILL_QUEUE.
LANE_QUEUE = "tests-limits-lanes"
PREFORK_QUEUE = "tests-limits-prefork"
KILL_QUEUE = "tests-limits-kill"
RUN_TIMEOUT_SECONDS = 60.0


# --- processes ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def endpoint():
    server = Endpoint(process_log_dir())
    yield server
    server.stop()


@pytest.fixture(scope="module")
def lanes(django_db_setup, django_db_blocker, endpoint):
    """Two I/O lane workers (gevent), each its own process and pool, each past its first HTTP
    call: the first call of a process pays one-time costs (measured 0.37 s from its claim to
    the host), which would spread the calls of the first second that a rate paces."""
    started = []
    with django_db_blocker.unblock():
        for index in range(2):
            warming = f"tests-limits-warm-{index}"
            queues = f"{settings.BATCHJOBS_HTTP_QUEUE},{LANE_QUEUE},{warming}"
            started.append(start_lane(queues=queues, concurrency=200))
            first_call = start(http_job(endpoint.url("warm", 0), queue=warming)).pk
            all_ended([first_call])
    yield started
    for lane in started:
        lane.stop()


@pytest.fixture(scope="module")
def prefork_workers(django_db_setup, django_db_blocker):
    """Two prefork workers of 4 children each, started side by side."""
    with django_db_blocker.unblock():
        started = [
            Process(
                name,
                worker_command(name, queues=PREFORK_QUEUE, concurrency=4),
                process_env(),
            )
            for name in ("limits-prefork-a", "limits-prefork-b")
        ]
        for worker in started:
            worker.wait_for_log("ready.")
    yield started
    for worker in started:
        worker.stop()


# --- helpers ------------------------------------------------------------------------------------


def limit_set(scope: str, name: str, **values: int | None) -> RunLimit:
    """Create or change a RunLimit through its service, as the admin and the API do: saved,
    then its waiters woken once that commits."""
    existing = RunLimit.objects.filter(scope=scope, name=name).first()
    if existing is None:
        return limit_create(scope=scope, name=name, **values)
    return limit_update(limit=existing, **values)


def limits_settle() -> None:
    """Let every worker read the limits anew: a process trusts the limits it read for
    LIMITS_REFRESH_SECONDS (limits.py), so a limit created a moment ago, or one a previous
    test's flush removed, may not be known to a worker yet."""
    time.sleep(LIMITS_REFRESH_SECONDS + 0.2)


def start_at_once(jobs: Iterable[BatchJob], runs_each: int) -> list[int]:
    """Start `runs_each` runs of every job in one transaction: their messages are published
    together when it commits."""
    with transaction.atomic():
        return [start(job).pk for _ in range(runs_each) for job in jobs]


def all_ended(ids: list[int], *, timeout: float = RUN_TIMEOUT_SECONDS, watch=None) -> float:
    """Wait until every execution of `ids` has ended; return the seconds it took. `watch` is
    called on every poll (to look at the executions while they wait)."""
    started = time.monotonic()

    def ended() -> bool:
        if watch is not None:
            watch()
        return BatchLog.objects.filter(pk__in=ids, status__in=FINAL_STATUSES).count() == len(ids)

    wait_until(ended, timeout=timeout, interval=0.05, message=f"{len(ids)} runs did not all end")
    return time.monotonic() - started


def assert_each_completed_once(ids: list[int], calls: list[Call]) -> None:
    """Every execution COMPLETED after one attempt, whose call reached the endpoint once."""
    statuses = Counter(
        BatchLog.objects.filter(pk__in=ids).values_list("status", "attempts").iterator()
    )
    assert statuses == {(ExecutionStatus.COMPLETED, 1): len(ids)}
    keys = Counter(call.key for call in calls)
    assert keys == Counter({str(pk): 1 for pk in ids}), "a call lost or made twice"
    assert {call.attempt for call in calls} == {"1"}


def most_in_any_second(arrivals: list[float]) -> tuple[int, float]:
    """The most arrivals in any 1-second window [t, t+1), sliding, and where that window
    starts (the window that holds the most starts at an arrival)."""
    ordered = sorted(arrivals)
    most, at, first = 0, 0.0, 0
    for last, arrived in enumerate(ordered):
        while arrived - ordered[first] >= 1.0:
            first += 1
        if last - first + 1 > most:
            most, at = last - first + 1, ordered[first]
    return most, at


class HeldWatch:
    """What the waiting executions show, sampled on each poll: the reasons of those held."""

    def __init__(self, ids: list[int]):
        self.ids = ids
        self.reasons: Counter[tuple[str, str]] = Counter()

    def __call__(self) -> None:
        held = BatchLog.objects.filter(pk__in=self.ids, status=ExecutionStatus.QUEUED).exclude(
            held_by=""
        )
        self.reasons.update(held.values_list("held_by", "held_reason").iterator())


# --- 1. runs at once per target host ------------------------------------------------------------


def test_host_limit_holds_calls_in_flight_at_the_host_across_two_lanes(lanes, endpoint):
    # given a limit of 10 at once on the host four jobs call, and 100 runs started together
    # against an endpoint that answers after 0.5 s
    limit_set(LimitScope.HOST, HOST, max_running=10)
    url = endpoint.url("host-running", 0.5)
    jobs = [http_job(url, max_attempts=1) for _ in range(4)]
    assert {job.queue for job in jobs} == {settings.BATCHJOBS_HTTP_QUEUE}
    assert {job.target_host for job in jobs} == {HOST}
    limits_settle()
    # when
    ids = start_at_once(jobs, runs_each=25)
    watch = HeldWatch(ids)
    drain = all_ended(ids, watch=watch)
    # then the host never had more than 10 calls at once, and had nearly 10 (the first ten
    # claims, one at a time under the limit's lock, may spread past the first call's end)
    stats = endpoint.stats("host-running")
    print(f"host limit 10: peak {stats.peak_in_flight} in flight, drained in {drain:.2f} s")
    assert 9 <= stats.peak_in_flight <= 10
    assert_each_completed_once(ids, stats.calls)
    # ...the runs waited QUEUED with the host and its count on view...
    assert watch.reasons, "no execution was seen held"
    for held_by, reason in watch.reasons:
        assert held_by == f"host:{HOST}"
        assert re.fullmatch(
            rf"waiting for a slot: host {re.escape(HOST)} has 1\d running \(limit 10 at once\)",
            reason,
        ), reason
    # ...and started as slots freed, not after the held ones' 30 s net: 10 waves of 0.5 s
    assert drain < 5.0 + 4.0, f"drained in {drain:.1f} s"
    assert not BatchLog.objects.filter(pk__in=ids).exclude(held_by="").exists()


# --- 2. calls per second per target host --------------------------------------------------------


def test_host_rate_holds_calls_per_second_at_the_host_across_two_lanes(lanes, endpoint, beat):
    # given at most 20 calls per second at the host, and 100 runs started together against a
    # fast endpoint
    rate = 20
    limit_set(LimitScope.HOST, HOST, max_per_second=rate)
    jobs = [http_job(endpoint.url("host-rate", 0), max_attempts=1) for _ in range(2)]
    limits_settle()
    # when
    started = time.time()
    ids = start_at_once(jobs, runs_each=50)
    drain = all_ended(ids)
    # then no one-second window, sliding over the arrivals, saw more than 20 calls
    calls = endpoint.stats("host-rate").calls
    arrivals = [call.arrived for call in calls]
    most, window_at = most_in_any_second(arrivals)
    span = max(arrivals) - min(arrivals)
    print(
        f"host rate {rate}/s: at most {most} calls in any second (window at "
        f"+{window_at - started:.3f} s), 100 calls over {span:.2f} s, drained in {drain:.2f} s"
    )
    assert most <= rate, f"{most} calls in the second from +{window_at - started:.3f} s"
    assert_each_completed_once(ids, calls)
    # ...and the rest drained right after: 20 calls in each window of RATE_WINDOW_SECONDS (a
    # second and the margin that covers how late a paced call may reach the host), two in
    # each tenth of it; a lane waits 5 s at most in place, and the relay sends the rest
    windows = len(ids) / rate
    assert span >= (windows - 1) * RATE_WINDOW_SECONDS - 0.05
    assert drain < windows * RATE_WINDOW_SECONDS + 2.0, f"drained in {drain:.1f} s"


def test_runs_waiting_for_the_rate_leave_the_lanes_database_connections_free(lanes, endpoint, beat):
    # given 50 runs against a host of 10 calls a second: about 40 wait in place in the lanes
    # (a greenlet's sleep, up to 5 s; the relay sends the rest at their start), far more than
    # a lane's pool of PostgreSQL connections (8)
    limit_set(LimitScope.HOST, HOST, max_per_second=10)
    job = http_job(endpoint.url("rate-waiters", 0), max_attempts=1)
    elsewhere = http_job(endpoint.url("elsewhere", 0).replace(HOST, "localhost"), max_attempts=1)
    assert elsewhere.target_host == "localhost"
    limits_settle()
    ids = start_at_once([job], runs_each=50)
    waiting_in_place = BatchLog.objects.filter(
        pk__in=ids, status=ExecutionStatus.QUEUED, held_by="", held_reason__startswith="waiting"
    )
    wait_until(lambda: waiting_in_place.count() >= 12, timeout=10, message="no run waits")
    # when a run of a job calling another host starts
    started = time.time()
    all_ended([start(elsewhere).pk])
    # then its call goes at once: no connection is held by a greenlet that only waits
    (call,) = endpoint.stats("elsewhere").calls
    print(f"rate waiters: a call to another host reached it {call.arrived - started:.3f} s after")
    assert call.arrived - started < 1.0
    all_ended(ids)
    assert_each_completed_once(ids, endpoint.stats("rate-waiters").calls)


def test_host_limit_of_both_kinds_holds_each_across_two_lanes(lanes, endpoint):
    # given a host of 4 calls at once and 10 a second (the 50 / 200, scaled down), and
    # 40 runs started together against an endpoint that answers after 0.5 s: the slots
    # allow 8 calls a second, the rate 10 in RATE_WINDOW_SECONDS
    limit_set(LimitScope.HOST, HOST, max_running=4, max_per_second=10)
    jobs = [http_job(endpoint.url("host-both", 0.5), max_attempts=1) for _ in range(2)]
    limits_settle()
    ids = start_at_once(jobs, runs_each=20)
    drain = all_ended(ids)
    # then neither was exceeded, and the runs drained at the pace of the tighter one
    stats = endpoint.stats("host-both")
    most, _ = most_in_any_second([call.arrived for call in stats.calls])
    print(
        f"host 4 at once, 10/s: peak {stats.peak_in_flight} in flight, at most {most} calls "
        f"in any second, 40 runs drained in {drain:.2f} s"
    )
    assert stats.peak_in_flight == 4
    assert most <= 10
    assert_each_completed_once(ids, stats.calls)
    # (5 s; 7.2 to 7.5 s measured with the rate's starts spread over each window, 9.7 s when
    # every run held for a slot had spent a start)
    paced = max(40 / 8, 40 / 10 * RATE_WINDOW_SECONDS)
    assert drain < paced + 4.0, f"drained in {drain:.1f} s"


# --- 3. runs at once per job --------------------------------------------------------------------


def test_job_limit_holds_its_runs_across_two_prefork_workers(prefork_workers, endpoint):
    # given a job of at most 3 runs at once, on a queue two prefork workers of 4 children
    # each consume (8 runs could start), and 20 runs of it started together
    job = http_job(
        endpoint.url("job-running", 0.3), queue=PREFORK_QUEUE, max_running=3, max_attempts=1
    )
    limits_settle()
    ids = start_at_once([job], runs_each=20)
    watch = HeldWatch(ids)
    drain = all_ended(ids, watch=watch)
    # then
    stats = endpoint.stats("job-running")
    print(f"job limit 3: peak {stats.peak_in_flight} in flight, 20 runs drained in {drain:.2f} s")
    assert stats.peak_in_flight == 3
    assert_each_completed_once(ids, stats.calls)
    assert {held_by for held_by, _ in watch.reasons} == {f"job:{job.pk}"}
    assert all(
        re.fullmatch(rf"waiting for a slot: job #{job.pk} has 3 running \(limit 3 at once\)", r)
        for _, r in watch.reasons
    ), watch.reasons
    assert drain < 20 * 0.3 / 3 + 4.0, f"drained in {drain:.1f} s"


# --- 4. runs at once per queue ------------------------------------------------------------------


def test_queue_limit_holds_the_queues_runs_across_two_lanes(lanes, endpoint):
    # given a queue limit of 5, on a queue both lanes consume, and 40 runs of 4 jobs there
    limit_set(LimitScope.QUEUE, LANE_QUEUE, max_running=5)
    url = endpoint.url("queue-running", 0.3)
    jobs = [http_job(url, queue=LANE_QUEUE, max_attempts=1) for _ in range(4)]
    limits_settle()
    ids = start_at_once(jobs, runs_each=10)
    watch = HeldWatch(ids)
    drain = all_ended(ids, watch=watch)
    # then
    stats = endpoint.stats("queue-running")
    print(f"queue limit 5: peak {stats.peak_in_flight} in flight, 40 runs drained in {drain:.2f} s")
    assert stats.peak_in_flight == 5
    assert_each_completed_once(ids, stats.calls)
    assert {held_by for held_by, _ in watch.reasons} == {f"queue:{LANE_QUEUE}"}
    assert drain < 40 * 0.3 / 5 + 4.0, f"drained in {drain:.1f} s"


# --- 5. a limit changed while executions wait ---------------------------------------------------


def test_a_raised_limit_starts_the_waiting_runs_at_once(lanes, endpoint):
    # given a host limit of 1 and 20 runs of a slow call: one in flight, 19 held
    limit_set(LimitScope.HOST, HOST, max_running=1)
    label = "raised"
    jobs = [http_job(endpoint.url(label, 3), max_attempts=1) for _ in range(2)]
    limits_settle()
    ids = start_at_once(jobs, runs_each=10)
    held = BatchLog.objects.filter(
        pk__in=ids, status=ExecutionStatus.QUEUED, held_by=f"host:{HOST}"
    )
    wait_until(lambda: held.count() == 19, timeout=10, message="19 runs were not held")
    assert endpoint.stats(label).in_flight == 1
    # when the limit is raised to 10 through the service (saved, then its waiters woken)
    raised_at = time.monotonic()
    limit_set(LimitScope.HOST, HOST, max_running=10)
    # then 10 are in flight within moments, not after the held runs' net
    wait_until(
        lambda: endpoint.stats(label).in_flight >= 10,
        timeout=HELD_RECHECK_SECONDS / 2,
        interval=0.05,
        message="the raised limit did not start the waiting runs",
    )
    rose_in = time.monotonic() - raised_at
    print(f"limit 1 -> 10: 10 in flight {rose_in:.2f} s after the change")
    assert rose_in < 2.0, f"in flight reached 10 only {rose_in:.1f} s after the change"
    all_ended(ids)
    stats = endpoint.stats(label)
    assert stats.peak_in_flight == 10
    assert_each_completed_once(ids, stats.calls)


def test_runs_held_by_the_rate_are_sent_again_at_their_start(prefork_workers, endpoint, beat):
    # given a host of 10 calls a second and 40 runs of a job on the prefork workers' queue:
    # a prefork process waits for the rate half a second at most, so most runs are held
    # QUEUED with the rate's reason, and the relay (beat) sends each again at its start
    limit_set(LimitScope.HOST, HOST, max_per_second=10)
    job = http_job(endpoint.url("rate-held", 0), queue=PREFORK_QUEUE, max_attempts=1)
    limits_settle()
    ids = start_at_once([job], runs_each=40)
    watch = HeldWatch(ids)
    drain = all_ended(ids, watch=watch)
    # then
    calls = endpoint.stats("rate-held").calls
    most, _ = most_in_any_second([call.arrived for call in calls])
    print(f"prefork, 10/s: {most} calls at most in any second, 40 runs drained in {drain:.2f} s")
    assert most <= 10
    assert_each_completed_once(ids, calls)
    assert set(watch.reasons) == {
        (f"host:{HOST}", f"waiting for the rate: host {HOST} allows 10 calls per second")
    }
    assert drain < (40 / 10) * RATE_WINDOW_SECONDS + 4.0, f"drained in {drain:.1f} s"


# --- 6. a worker killed while it holds the slots ------------------------------------------------


def test_held_runs_complete_after_the_worker_holding_the_slots_is_killed(endpoint, beat):
    # given a lane that took the 3 slots of a queue limit and held the other 17 runs
    limit_set(LimitScope.QUEUE, KILL_QUEUE, max_running=3)
    label = "killed"
    job = http_job(endpoint.url(label, 1.5), queue=KILL_QUEUE, max_attempts=3)
    victim = start_lane(queues=KILL_QUEUE)
    survivor = None
    try:
        limits_settle()
        ids = start_at_once([job], runs_each=20)
        held = BatchLog.objects.filter(pk__in=ids, status=ExecutionStatus.QUEUED).exclude(
            held_by=""
        )
        wait_until(lambda: held.count() == 17, timeout=10, message="17 runs were not held")
        wait_until(lambda: endpoint.stats(label).in_flight == 3, timeout=10)
        # when it is killed with its 3 calls in flight, and another lane takes the queue over
        victim.kill()
        killed_at = time.monotonic()
        running = BatchLog.objects.filter(pk__in=ids, status=ExecutionStatus.STARTED)
        assert running.count() == 3
        assert {worker.split("@")[0] for worker in running.values_list("worker", flat=True)} == {
            victim.name
        }
        survivor = start_lane(queues=KILL_QUEUE)
        # then the reaper frees the slots, and every run completes
        drain = all_ended(ids)
    finally:
        victim.stop()
        if survivor is not None:
            survivor.stop()
    stats = endpoint.stats(label)
    print(
        f"killed lane: all 20 ended {time.monotonic() - killed_at:.2f} s after the kill "
        f"(waited {drain:.2f} s), peak {stats.peak_in_flight} in flight"
    )
    assert set(BatchLog.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
        ExecutionStatus.COMPLETED
    }
    lost = set(BatchLog.objects.filter(pk__in=ids, attempts=2).values_list("pk", flat=True))
    assert len(lost) == 3, "the 3 killed attempts were not retried once each"
    assert BatchLog.objects.filter(pk__in=ids, attempts=1).count() == 17
    # each key was called once, the 3 killed ones a second time as attempt 2
    keys = Counter((call.key, call.attempt) for call in stats.calls)
    expected = {(str(pk), "1"): 1 for pk in ids} | {(str(pk), "2"): 1 for pk in lost}
    assert keys == Counter(expected)
    # the killed calls ended at the endpoint (1.5 s) before the reaper took their attempts (4 s
    # without a heartbeat), so the retries never overlapped them
    assert stats.peak_in_flight == 3


# --- the price of the check ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_claim_pays_no_extra_query_while_no_limit_exists():
    # given no limit anywhere, and a worker that read so (it keeps what it read a second) and
    # knows the job already
    assert not RunLimit.objects.exists()
    assert not BatchJob.objects.filter(max_running__isnull=False).exists()
    job = http_job("http://127.0.0.1:9/", queue=IN_PROCESS_QUEUE)
    warming, limited, bare, later = (start(job).pk for _ in range(4))
    limits_forget()
    assert execution_claim_within_limits(execution_id=warming, worker="w", task_id="t1")
    # when a claim is made within the second, and a bare one
    with CaptureQueriesContext(connection) as within_limits:
        assert execution_claim_within_limits(execution_id=limited, worker="w", task_id="t2")
    with CaptureQueriesContext(connection) as bare_claim:
        assert execution_claim(execution_id=bare, worker="w", task_id="t3")
    # then the claim within limits costs what the bare claim costs
    assert len(within_limits) == len(bare_claim), [query["sql"] for query in within_limits]
    # and reading the (empty) limits again, a second later, two queries
    limits_forget()
    with CaptureQueriesContext(connection) as reading:
        assert execution_claim_within_limits(execution_id=later, worker="w", task_id="t4")
    assert len(reading) == len(bare_claim) + 2, [query["sql"][:60] for query in reading]


@pytest.mark.django_db
@pytest.mark.parametrize("change", ["raised", "removed"])
def test_a_limit_that_looks_full_is_read_again_before_a_run_is_held(change):
    # given a queue limit of 1 this process read, its slot taken and a second run held
    limit = RunLimit.objects.create(scope=LimitScope.QUEUE, name=IN_PROCESS_QUEUE, max_running=1)
    job = http_job("http://127.0.0.1:9/", queue=IN_PROCESS_QUEUE)
    running, waiting = start(job).pk, start(job).pk
    limits_forget()
    assert execution_claim_within_limits(execution_id=running, worker="w", task_id="t1")
    assert execution_claim_within_limits(execution_id=waiting, worker="w", task_id="t2") is None
    held = BatchLog.objects.get(pk=waiting)
    assert held.held_by == f"queue:{IN_PROCESS_QUEUE}"
    assert held.held_reason == (
        f"waiting for a slot: queue {IN_PROCESS_QUEUE} has 1 running (limit 1 at once)"
    )
    # when another process raises (or removes) the limit and wakes the held run, while this
    # process's table still says 1
    if change == "raised":
        RunLimit.objects.filter(pk=limit.pk).update(max_running=2)
    else:
        limit.delete()
    BatchLog.objects.filter(pk=waiting).update(held_by="", next_attempt_at=Now())
    # then its claim counts against the limit as it stands
    assert execution_claim_within_limits(execution_id=waiting, worker="w", task_id="t3")
    assert BatchLog.objects.get(pk=waiting).held_reason == ""


@pytest.mark.django_db
def test_reserved_starts_never_hold_more_than_the_rate_in_a_window():
    # given a rate of 20 calls, 45 callers at once, and one that waits 1 s at most
    key = f"tests-{uuid.uuid4().hex}"
    window, slice_ = RATE_WINDOW_SECONDS, RATE_WINDOW_SECONDS / RATE_SLICES

    def reserved_start() -> float:
        wait, reserved = rate_reserve(key, 20, longest=10)
        assert reserved
        return time.monotonic() + wait

    starts = [reserved_start() for _ in range(45)]
    impatient = rate_reserve(key, 20, longest=1.0)

    def gaps(apart: int) -> list[float]:
        return [later - earlier for earlier, later in zip(starts, starts[apart:], strict=False)]

    # then no window holds more than 20 starts, nor a tenth of it more than 2...
    assert min(gaps(20)) >= window - 0.005
    assert min(gaps(2)) >= slice_ - 0.005
    # ...and they follow each other without a gap: two in each tenth
    assert max(gaps(1)) < slice_ + 0.02
    assert starts[-1] - starts[0] == pytest.approx(22 * slice_, abs=0.05)
    # and the impatient one reserved nothing, told how long it would have waited
    wait, reserved = impatient
    assert not reserved and wait == pytest.approx(22.5 * slice_, abs=slice_)


@pytest.mark.django_db
def test_a_run_that_ends_wakes_the_oldest_run_waiting_for_a_slot_not_one_waiting_for_the_rate():
    # given a host of 1 run at once and 5 calls a second: one run running, then one held by
    # the rate (older) and one held for the slot
    limit_set(LimitScope.HOST, HOST, max_running=1, max_per_second=5)
    limits_forget()
    job = http_job("http://127.0.0.1:9/", queue=IN_PROCESS_QUEUE)
    running, for_the_rate, for_a_slot = (start(job).pk for _ in range(3))
    assert execution_claim(execution_id=running, worker="w", task_id="t1")
    (limit,) = execution_limits(for_the_rate)
    execution_hold(
        execution_id=for_the_rate, limit=limit, reason=rate_reason(limit), until_seconds=20
    )
    execution_hold(
        execution_id=for_a_slot,
        limit=limit,
        reason=running_reason(limit, 1),
        until_seconds=HELD_RECHECK_SECONDS,
    )
    # when the running one ends, its slot goes to the run waiting for a slot
    assert held_wake_after_run([limit]) is None
    held = dict(
        BatchLog.objects.filter(pk__in=[for_the_rate, for_a_slot]).values_list("pk", "held_by")
    )
    assert held == {for_the_rate: f"host:{HOST}", for_a_slot: ""}
    # and a change of the limit sends the one waiting for the rate to reckon its start again
    assert limit_changed(limit.key) == 1
    assert not BatchLog.objects.filter(pk=for_the_rate).exclude(held_by="").exists()


@pytest.mark.django_db
def test_a_held_run_counts_again_after_its_hold_and_goes_if_a_slot_freed_meanwhile():
    # given a queue of 1 run at once, its slot taken, and a run held for it
    limit_set(LimitScope.QUEUE, IN_PROCESS_QUEUE, max_running=1)
    limits_forget()
    job = http_job("http://127.0.0.1:9/", queue=IN_PROCESS_QUEUE)
    running, waiting = start(job).pk, start(job).pk
    assert execution_claim_within_limits(execution_id=running, worker="w", task_id="t1")
    (limit,) = execution_limits(waiting)
    with transaction.atomic():
        assert held_for_a_slot(execution_id=waiting, limits=[limit]) == limit
    # while the slot is taken, its recount leaves it held
    held_recheck(execution_id=waiting, limit=limit)
    assert BatchLog.objects.get(pk=waiting).held_by == limit.key
    # when the running one ended before the hold committed (its end found nothing held)
    BatchLog.objects.filter(pk=running).update(status=ExecutionStatus.COMPLETED)
    held_recheck(execution_id=waiting, limit=limit)
    # then the recount sends it
    assert BatchLog.objects.get(pk=waiting).held_by == ""
    assert execution_claim_within_limits(execution_id=waiting, worker="w", task_id="t2")
