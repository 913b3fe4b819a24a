"""Limits that hold an execution QUEUED until it may run: runs at once per job
(`BatchJob.max_running`), per queue and per target host (`RunLimit`), and calls started per
second per target host.

Runs at once are counted in the database, where the running attempts are: a claim that a limit
applies to takes a transaction-scoped lock per limit (an advisory lock on PostgreSQL; SQLite's
IMMEDIATE transactions are serialised already), counts the runs of that limit and claims, or
marks the execution held (`held_by`, `held_reason`) with a late `next_attempt_at`. Each run that
ends sends the oldest execution waiting for a slot of each of its limits, and a claim that held
its run counts again once the hold has committed, sending it itself if a slot freed meanwhile:
whichever comes last sees the other, so a run is woken as soon as a slot frees and none is
forgotten between a count and a hold, and a run's end takes no lock (with it, a host limit of
50 at once served 45 claims a second, its sessions waiting for the lock 87% of the time). A run
whose limit looks full is read again from the database first (a process's table of limits may
be a second old, and a raised limit must not hold its waiters again); the late
`next_attempt_at` lets the relay send a held one whose wake-up was lost (a worker killed
between its commit and its publish). Nothing polls.

Calls per second are two windows per host on Redis, each a list of reserved start times:
a caller reserves the earliest time that is a window's length after the start `max_per_second`
calls before it, and sleeps until then (one Lua script, Redis's clock). The first window paces
the claims: reserved before the claim once the slots have room (a run they hold would waste
its start), a start a moment away is waited for in place (a
greenlet's sleep costs nothing; a prefork process waits less), a later one is a hold, with
`next_attempt_at` at that time and nothing reserved. The second paces the calls: reserved once
the claim has committed, the last step here before the call, and waited for with the attempt
STARTED; its callers come at the first window's pace, so that wait is the spread of their
claims' durations. One window was not enough: the claim between it and the call (its
statements, a pooled connection shared by a hundred greenlets) took 0.07 to 0.45 s in a burst,
and 28 to 37 calls reached a host of 20 per second within one second.

A window is a second and RATE_MARGIN_SECONDS long: what reaches the host is the reserved
starts shifted by the time from this module to the wire (the runner, the client, connecting),
which varied by up to 0.09 s between calls under load (0.37 s for a process's very first
call, before its client is warm); a window of exactly one second turns any such spread into
one call too many whenever a burst follows the one before it by exactly a second. The price is
a pace of `max_per_second` per 1.2 s when calls queue up. Within a window the starts are
spread, at most a tenth of the rate (rounded up) in any tenth of it (RATE_SLICES): a window's
worth claimed at once found a host's slots full and was held, its starts spent. Reserved
starts, unlike the `limits` library's moving window (a hit that fails and tries again), wake
each waiter once, at its own time, instead of every waiter at the instant the window frees.

A process reads the limits at most once a second; a system without any pays nothing on the
hot path. So a limit created, or lowered, binds the claims of a process that read the limits
less than a second before within that second (a raised or removed one at once, see above).
"""

import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import timedelta

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import Q
from django.db.models.functions import Now
from django.utils.translation import gettext

from batchjobs.models import BatchJob, BatchLog, ExecutionStatus, LimitScope, RunLimit, limit_key
from batchjobs.models.clock import database_now
from batchjobs.models.execution import RUNNING_STATUSES

from .timeout import cooperative

logger = logging.getLogger(__name__)

# How a run waiting for a slot, or for the rate, says so (the start of its held_reason): a
# run's end wakes only the first kind.
SLOT_WAIT = "waiting for a slot"
RATE_WAIT = "waiting for the rate"
# How long a process trusts the limits it read.
LIMITS_REFRESH_SECONDS = 1.0
# A held execution is sent again after this long even if no run's end woke it (the relay's
# net under a lost wake-up); a run's end or a changed limit wakes it long before.
HELD_RECHECK_SECONDS = 30.0
# Over the rate, an I/O lane process waits in place for the window up to this long; a prefork
# process (one run at a time) up to the shorter one; a longer wait is a hold.
RATE_WAIT_LANE_SECONDS = 5.0
RATE_WAIT_PREFORK_SECONDS = 0.5
# A rate's windows: `max_per_second` calls in any RATE_WINDOW_SECONDS, a second and the margin
# that covers how much later than its reserved start a call may reach the host (see the
# module's docstring); the claims' window is the limit's key, the calls' its key and the suffix.
RATE_MARGIN_SECONDS = 0.2
RATE_WINDOW_SECONDS = 1.0 + RATE_MARGIN_SECONDS
# ...and at most a tenth of them (rounded up) in any tenth of it: 2,000 runs under a host of
# 200/s and 50 at once claimed in bursts of 200 each window, 150 of which the slots then held,
# their starts spent for nothing.
RATE_SLICES = 10
RATE_KEY_PREFIX = "batchjobs-rate"
CALLS_WINDOW_SUFFIX = ":calls"
_ALWAYS = 1e9  # a `longest` no wait reaches


@dataclass(frozen=True)
class Limit:
    key: str  # "job:12", "queue:reports", "host:example.com"
    max_running: int | None
    max_per_second: int | None

    @property
    def label(self) -> str:
        scope, name = self.key.split(":", 1)
        return f"job #{name}" if scope == "job" else f"{scope} {name}"


@dataclass(frozen=True)
class _Target:
    job_id: int
    queue: str
    target_host: str
    max_running: int | None


class _LimitTable:
    """The limits as this process last read them: RunLimits by key, and the jobs that have
    a limit of their own (job id -> max_running)."""

    def __init__(self) -> None:
        self._read_at = float("-inf")
        self.run_limits: dict[str, Limit] = {}
        self.job_limits: dict[int, int] = {}

    def fresh(self) -> "_LimitTable":
        if time.monotonic() - self._read_at > LIMITS_REFRESH_SECONDS:
            self.run_limits = {
                limit_key(scope, name): Limit(limit_key(scope, name), running, per_second)
                for scope, name, running, per_second in RunLimit.objects.values_list(
                    "scope", "name", "max_running", "max_per_second"
                )
            }
            self.job_limits = {
                pk: running
                for pk, running in BatchJob.objects.filter(max_running__isnull=False).values_list(
                    "pk", "max_running"
                )
                if running is not None
            }
            self._read_at = time.monotonic()
        return self

    def forget(self) -> None:
        self._read_at = float("-inf")

    @property
    def empty(self) -> bool:
        return not self.run_limits and not self.job_limits

    def for_target(self, target: _Target) -> list[Limit]:
        found = []
        if target.max_running is not None:
            found.append(Limit(limit_key("job", str(target.job_id)), target.max_running, None))
        scoped = ((LimitScope.QUEUE, target.queue), (LimitScope.HOST, target.target_host))
        for scope, name in scoped:
            limit = self.run_limits.get(limit_key(scope, name)) if name else None
            if limit is not None:
                found.append(limit)
        return found


_table = _LimitTable()


def limits_forget() -> None:
    """Read the limits again at the next claim (a test, or a limit just changed here)."""
    _table.forget()


def execution_limits(execution_id: int) -> list[Limit] | None:
    """The limits that apply to the execution's job; [] when none does, at no database cost
    while the system has no limit at all. None if the execution is gone."""
    table = _table.fresh()
    if table.empty:
        return []
    row = (
        BatchLog.objects.filter(pk=execution_id)
        .values_list("job_id", "job__queue", "job__target_host", "job__max_running")
        .first()
    )
    if row is None:
        return None
    return table.for_target(_Target(*row))


def job_limits(job: BatchJob) -> list[Limit]:
    """The limits that apply to `job`'s runs (for a run's end, which wakes their waiters)."""
    table = _table.fresh()
    if table.empty:
        return []
    return table.for_target(_Target(job.pk, job.queue, job.target_host, job.max_running))


# --- runs at once ----------------------------------------------------------------------------


def running_count(key: str) -> int:
    scope, name = key.split(":", 1)
    running = BatchLog.objects.filter(status__in=RUNNING_STATUSES)
    if scope == "job":
        return running.filter(job_id=int(name)).count()
    if scope == LimitScope.QUEUE:
        return running.filter(job__queue=name).count()
    return running.filter(job__target_host=name).count()


def first_full(limits: Iterable[Limit]) -> tuple[Limit, int] | None:
    """The first limit on runs at once with no slot free, as it stands now, and its count;
    call in a transaction that serialises the claims (see held_for_a_slot). A limit that
    looks full by this process's table is read again:
    the table may be a second old, and a run woken because its limit was just raised (or
    removed) must not be held again, for the relay's net, by the old figure."""
    for limit in limits:
        if limit.max_running is not None:
            running = running_count(limit.key)
            if running >= limit.max_running:
                current = replace(limit, max_running=max_running_now(limit.key))
                if current.max_running is not None and running >= current.max_running:
                    return current, running
    return None


def slots_look_full(limits: Iterable[Limit]) -> bool:
    """Whether one of `limits` on runs at once has no slot free, counted without its lock (a
    hint: held_for_a_slot decides)."""
    return any(
        limit.max_running is not None and running_count(limit.key) >= limit.max_running
        for limit in limits
    )


def held_for_a_slot(*, execution_id: int, limits: Iterable[Limit]) -> Limit | None:
    """Hold the execution QUEUED if one of `limits` on runs at once has no slot free, and
    return that limit (as it stands now); then held_recheck once a hold has committed.

    SQLite's claim under limits: call in a transaction, with the claim that follows a None
    made in it; SQLite's IMMEDIATE transactions serialise every writer, so the count stands
    until the claim. PostgreSQL's claim counts under the limits' advisory locks in one
    statement instead (CLAIM_GATED_POSTGRESQL, migration 0011)."""
    full = first_full(limits)
    if full is None:
        return None
    limit, running = full
    execution_hold(
        execution_id=execution_id,
        limit=limit,
        reason=running_reason(limit, running),
        until_seconds=HELD_RECHECK_SECONDS,
    )
    return limit


def held_recheck(*, execution_id: int, limit: Limit) -> None:
    """After a hold for a slot of `limit` has committed: send the run at once if a slot freed
    meanwhile. A run's end looks for the runs held without the limit's lock (held_wake), so it
    may have looked just before this hold committed; this count, made after, then sees that
    run ended."""
    from .publish import executions_publish_or_defer

    assert limit.max_running is not None
    if running_count(limit.key) >= limit.max_running:
        return
    if BatchLog.objects.filter(
        pk=execution_id, status=ExecutionStatus.QUEUED, held_by=limit.key
    ).update(held_by="", next_attempt_at=Now()):
        executions_publish_or_defer([execution_id])


def max_running_now(key: str) -> int | None:
    """Limit `key`'s runs at once as the database has it now (None: no such limit any more)."""
    scope, name = key.split(":", 1)
    if scope == "job":
        return BatchJob.objects.filter(pk=int(name)).values_list("max_running", flat=True).first()
    limits = RunLimit.objects.filter(scope=scope, name=name)
    return limits.values_list("max_running", flat=True).first()


def execution_hold(*, execution_id: int, limit: Limit, reason: str, until_seconds: float) -> bool:
    """Keep the QUEUED execution waiting for `limit`, with `reason` on view; sent again when a
    run of the limit ends, or by the relay after `until_seconds`."""
    return bool(
        BatchLog.objects.filter(pk=execution_id, status=ExecutionStatus.QUEUED).update(
            held_by=limit.key,
            held_reason=reason[:500],
            next_attempt_at=database_now() + timedelta(seconds=until_seconds),
        )
    )


# Why a run waits for a slot; PostgreSQL writes it too, with format() (slot_reason_sql).
_SLOT_REASON = "{wait}: {label} has {running} running (limit {maximum} at once)"


def running_reason(limit: Limit, running: int) -> str:
    return _SLOT_REASON.format(
        wait=SLOT_WAIT, label=limit.label, running=running, maximum=limit.max_running
    )


def slot_reason_sql_format() -> str:
    """The reason as a format() string of PostgreSQL, of the limit's label, runs, maximum."""
    return _SLOT_REASON.format(wait=SLOT_WAIT, label="%1$s", running="%2$s", maximum="%3$s")


def held_wake(key: str, *, count: int = 1, rate_too: bool = False) -> list[int]:
    """Send the `count` oldest executions waiting for a slot of limit `key` (a run of it
    ended, or the limit changed), and with `rate_too` every one waiting for its rate (whose
    start was reckoned at the old rate). On PostgreSQL in one statement under the limit's
    lock, which the claim's count and hold also take (migration 0011); elsewhere without it,
    a claim that counted the ended run as running and held its run counting again once the
    hold has committed (held_recheck). Returns the ids sent.

    A run's end wakes only a run that waits for a slot: one held by the rate would count its
    start again, find it as far off, and be held again, and the slot would go to nobody."""
    from .publish import executions_publish_or_defer

    if connection.vendor == "postgresql" and not rate_too:
        # One statement: the lock is held only while the server runs it (migration 0011).
        with connection.cursor() as cursor:
            cursor.execute("SELECT batchjobs_limit_wake(%s, %s, %s)", [key, count, SLOT_WAIT])
            woken = [pk for (pk,) in cursor.fetchall()]
        if woken:
            executions_publish_or_defer(woken)
        return woken
    with transaction.atomic():
        held = BatchLog.objects.select_for_update(skip_locked=True).filter(
            status=ExecutionStatus.QUEUED, held_by=key
        )
        for_the_rate = Q(held_reason__startswith=RATE_WAIT)
        woken = list(
            held.exclude(for_the_rate)
            .order_by("created_at", "pk")
            .values_list("pk", flat=True)[:count]
        )
        if rate_too:
            woken += held.filter(for_the_rate).values_list("pk", flat=True)
        if woken:
            BatchLog.objects.filter(pk__in=woken, status=ExecutionStatus.QUEUED).update(
                held_by="", next_attempt_at=Now()
            )
    if woken:
        executions_publish_or_defer(woken)
    return woken


def held_wake_after_run(limits: Iterable[Limit]) -> None:
    """A run ended: its slot of each limit on runs at once goes to the oldest one waiting."""
    for limit in limits:
        if limit.max_running is not None:
            held_wake(limit.key)


def limit_changed(key: str) -> int:
    """A limit was created, changed or removed: the executions it holds are sent again to
    count anew (as many waiting for a slot as it now has room for, all if it holds no runs at
    once any more; every one waiting for its rate). Returns how many were sent."""
    _table.forget()
    limit = _table.fresh().run_limits.get(key)
    if limit is None or limit.max_running is None:
        room = BatchLog.objects.filter(status=ExecutionStatus.QUEUED, held_by=key).count()
    else:
        room = max(0, limit.max_running - running_count(key))
    return len(held_wake(key, count=room, rate_too=True))


# --- calls per second ------------------------------------------------------------------------

# Reserve the earliest time a call of a window may start: `window` seconds after the call
# `limit` calls before it, so that no `window` ever holds more than `limit` calls. Times are
# Redis's clock (one clock for every worker host). The time is reserved (and the list of the
# last `limit` times kept) unless it is more than `longest` seconds away. Returns the seconds
# to wait and whether it was reserved, as strings (a Lua number would come back an integer).
_RESERVE_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local limit, window, longest = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local burst, slice = tonumber(ARGV[4]), tonumber(ARGV[5])
local at = now
local before = redis.call('LINDEX', KEYS[1], limit - 1)
if before then at = math.max(at, tonumber(before) + window) end
local recent = redis.call('LINDEX', KEYS[1], burst - 1)
if recent then at = math.max(at, tonumber(recent) + slice) end
if at - now > longest then return {string.format('%.6f', at - now), '0'} end
redis.call('LPUSH', KEYS[1], string.format('%.6f', at))
redis.call('LTRIM', KEYS[1], 0, limit - 1)
redis.call('PEXPIRE', KEYS[1], math.ceil((at - now + window) * 1000))
return {string.format('%.6f', at - now), '1'}
"""
_reserve_script = None


def rate_reserve(key: str, per_second: int, *, longest: float) -> tuple[float, bool]:
    """Reserve a start in window `key` of `per_second` calls (RATE_WINDOW_SECONDS long): the
    seconds until it, and True; or, when that is more than `longest` away, the seconds until
    it and False (nothing reserved)."""
    global _reserve_script
    if _reserve_script is None:
        import redis

        # kombu spells the embedded Redis's unix socket redis+socket://, redis-py unix://.
        url = settings.REDIS_URL.replace("redis+socket://", "unix://")
        client = redis.Redis.from_url(url, socket_timeout=2)
        _reserve_script = client.register_script(_RESERVE_LUA)
    burst = -(-per_second // RATE_SLICES)  # at most this many in each slice of the window
    wait, reserved = _reserve_script(
        keys=[f"{RATE_KEY_PREFIX}:{key}"],
        args=[per_second, RATE_WINDOW_SECONDS, longest, burst, RATE_WINDOW_SECONDS / RATE_SLICES],
    )
    return float(wait), reserved == b"1"


def rate_reason(limit: Limit) -> str:
    return f"{RATE_WAIT}: {limit.label} allows {limit.max_per_second} calls per second"


# A held_reason is stored in English whatever the language: the wake-ups find the runs by its
# start (SLOT_WAIT, RATE_WAIT), in SQL too. Pages read it back into the reader's language.
_SLOT_REASON_READ = re.compile(
    rf"^{SLOT_WAIT}: (?P<label>.+) has (?P<running>\d+) running \(limit (?P<maximum>\d+) at once\)$"
)
_RATE_REASON_READ = re.compile(
    rf"^{RATE_WAIT}: (?P<label>.+) allows (?P<per_second>\d+) calls per second$"
)


def held_reason_shown(reason: str) -> str:
    """A stored held_reason (running_reason, rate_reason) in the active language; any other
    text as it is."""
    if slot := _SLOT_REASON_READ.match(reason):
        return gettext(
            "waiting for a slot: %(label)s has %(running)s running (limit %(maximum)s at once)"
        ) % {**slot.groupdict(), "label": _label_shown(slot["label"])}
    if rate := _RATE_REASON_READ.match(reason):
        return gettext("waiting for the rate: %(label)s allows %(per_second)s calls per second") % {
            **rate.groupdict(),
            "label": _label_shown(rate["label"]),
        }
    return reason


def _label_shown(label: str) -> str:
    """Limit.label in the active language: "job #12", "queue reports", "host example.com"."""
    scope, _, name = label.partition(" ")
    if scope == "job":
        return gettext("job %(number)s") % {"number": name}
    if scope == LimitScope.QUEUE:
        return gettext("queue %(name)s") % {"name": name}
    if scope == LimitScope.HOST:
        return gettext("host %(name)s") % {"name": name}
    return label


def rate_admit(*, execution_id: int, limits: Iterable[Limit]) -> bool:
    """Reserve a start in each rate of `limits` and wait for it; True once all have come,
    False if the execution was held instead (a start too far off) or is no longer QUEUED."""
    longest = RATE_WAIT_LANE_SECONDS if cooperative() else RATE_WAIT_PREFORK_SECONDS
    for limit in limits:
        if limit.max_per_second is None:
            continue
        wait, reserved = rate_reserve(limit.key, limit.max_per_second, longest=longest)
        if not reserved:
            execution_hold(
                execution_id=execution_id,
                limit=limit,
                reason=rate_reason(limit),
                until_seconds=wait,
            )
            return False
        if wait > 0:
            if not BatchLog.objects.filter(pk=execution_id, status=ExecutionStatus.QUEUED).update(
                held_reason=rate_reason(limit)[:500]
            ):
                return False
            _sleep_unconnected(wait)
    return True


def rate_pace_call(limits: Iterable[Limit]) -> None:
    """Reserve the call's start in the calls' own window of each rate of `limits`, and wait
    for it: the last step before a claimed attempt's call. Its callers came through
    rate_admit's window of the same length, so the wait is the spread of their claims'
    durations, a fraction of a second."""
    for limit in limits:
        if limit.max_per_second is not None:
            wait, _ = rate_reserve(
                f"{limit.key}{CALLS_WINDOW_SUFFIX}", limit.max_per_second, longest=_ALWAYS
            )
            if wait > 0:
                _sleep_unconnected(wait)


def _sleep_unconnected(seconds: float) -> None:
    """Sleep for the rate; in an I/O lane process, the greenlet's pooled database connection
    given back first: the pool has a handful for every greenlet of the process, and the
    forty that only waited held them all, so that a call to another host waited 4.6 s for a
    connection (0.09 s now); a heartbeat kept waiting past its timeout would let the reaper
    take live attempts.
    Never inside a transaction: the callers sleep between theirs."""
    if cooperative():
        connections.close_all()
    time.sleep(seconds)
