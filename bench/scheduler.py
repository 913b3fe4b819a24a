"""Scheduler benchmark: django-celery-beat's DatabaseScheduler against ours, side by side.

For each N, both schedulers get N schedules all due at the same minute boundary (dcb: N
PeriodicTasks sharing one CrontabSchedule `M H * * *`; ours: N BatchSchedules of a noop handler
job, cron `M H * * *`), on the same PostgreSQL and Redis, one after the other; then a beat
process of that scheduler is started well before the minute. A thread takes every message off
the run's own queue as it lands and timestamps it (no worker consumes the bench queues), so
publish time is measured the same way for both. Reported per run:

- fires/s: fired schedules / (last publish - due minute)
- fire lag p50/p99/max: publish time - due time (ours: the execution's scheduled_for)
- beat peak RSS: VmHWM of the beat process, read just before it is stopped

dcb runs are capped (--dcb-cap seconds after the due minute); what fired by then is reported.
Also measured: idle fire lag (one schedule every second for --idle-seconds; dcb: an
IntervalSchedule of 1 s, whose next due time is its previous run + 1 s, so its lag is the gap
between publishes minus 1 s), and edit latency (from the start of an edit that makes a schedule
due 0.2 s later, while beat sleeps, to the message's publish; dcb: a one-off ClockedSchedule).

Run (PostgreSQL and Redis required; the database must be named bj_sched_bench*: it is created
afresh and migrated at the start, and dropped at the end unless --keep-db):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bj_sched_bench \
    REDIS_URL=redis://127.0.0.1:6379/8 .venv/bin/python bench/scheduler.py [--quick]

Each burst run ends with `RESULT scheduler=<ours|dcb> n=<N> fires_per_s=<x> p50_s=<x> p99_s=<x>
max_s=<x> rss_mb=<x> fired=<count>`; idle and edit runs end with `IDLE ...` and `EDIT ...`
lines. Redis keys and database rows the bench creates carry the prefix `bj_sched_bench-`.
"""

import argparse
import bisect
import json
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, Python puts bench/ on the path, not the project.
sys.path.insert(0, str(ROOT))

from bench.scheduler_summary import Results, print_summary  # noqa: E402
from bench.scheduler_support import (  # noqa: E402
    QUEUE_PREFIX,
    BeatProcess,
    BenchError,
    BurstResult,
    LagResult,
    PySpyRecorder,
    QueueWatcher,
    check_environment,
    create_database,
    decode_message,
    delete_bench_keys,
    drop_database,
    pyspy_report,
    setup_django,
    sql_execute,
)
from bench.support import config_or_report, percentile, redis_client  # noqa: E402

DCB_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
OUR_SCHEDULER = "batchjobs.scheduling.beat:BatchScheduler"
NAME_PREFIX = "bj_sched_bench-"
# dcb's periodic tasks send this name; no process registers or consumes it.
BENCH_TASK = "bench.scheduler_fire"
POLL_SECONDS = 0.02
EDIT_DELAY = timedelta(seconds=0.2)
EDIT_TIMEOUT_SECONDS = 20.0
TIMELINE_SECONDS = 20.0
# Both schedulers get this long between beat's start and the idle window, and before edits.
IDLE_WARM_UP_SECONDS = 3.0
EDIT_WARM_UP_SECONDS = 2.0
NAN = float("nan")


# --- the bench's own rows, keys and processes ----------------------------------------------------


def _table(model) -> str:
    return model._meta.db_table


class Bench:
    """What every run shares: the options, a tag naming this bench's queues and rows, the beat
    environment and log directory, and the Redis keys that were there before the bench."""

    def __init__(self, args: argparse.Namespace, log_dir: Path):
        self.args = args
        self.log_dir = log_dir
        self.tag = uuid.uuid4().hex[:6]
        self.beat_env = dict(setting.split("=", 1) for setting in args.beat_env)
        self.redis = redis_client()
        self.rng = random.Random(20240601)
        delete_bench_rows()
        delete_bench_keys(self.redis)
        # Beat also sends the project's housekeeping PeriodicTasks to their own queues, which
        # nobody consumes here: the keys that appear during the bench are deleted at its end.
        self._keys_before = set(self.redis.scan_iter(count=1000))

    def queue(self, label: str) -> str:
        return f"{QUEUE_PREFIX}{self.tag}-{label}"

    def name(self, label: str) -> str:
        """The name of a job or PeriodicTask of this run: delete_bench_rows finds it."""
        return f"{NAME_PREFIX}{self.tag}-{label}"

    def our_job(self, label: str, queue: str):
        """A noop handler job on the run's queue, which our schedules fire."""
        from batchjobs.services.jobs import job_create

        return job_create(name=self.name(label), kind="handler", handler_name="noop", queue=queue)

    def after_run(self) -> None:
        """Leave nothing of a run behind; deleted rows must not slow the next run's scans."""
        from django_celery_beat.models import PeriodicTask

        from batchjobs.models import BatchLog, BatchSchedule, ScheduleOccurrence

        delete_bench_rows()
        delete_bench_keys(self.redis)
        for model in (PeriodicTask, BatchSchedule, BatchLog, ScheduleOccurrence):
            sql_execute(f"VACUUM ANALYZE {_table(model)}")

    def delete_new_keys(self) -> None:
        new = set(self.redis.scan_iter(count=1000)) - self._keys_before
        if new:
            self.redis.delete(*new)


def delete_bench_rows() -> None:
    """Delete every row the bench made (this run's or a killed earlier run's), with plain SQL:
    Django's cascade would collect 100,000 objects in memory."""
    from django_celery_beat.models import PeriodicTask, PeriodicTasks

    from batchjobs.models import BatchJob, BatchLog, BatchSchedule, ScheduleOccurrence

    like = NAME_PREFIX + "%"
    jobs = f"SELECT id FROM {_table(BatchJob)} WHERE name LIKE %s"
    schedules = f"SELECT id FROM {_table(BatchSchedule)} WHERE job_id IN ({jobs})"
    # The occurrence records first: they refer to both the schedules and the executions.
    sql_execute(f"DELETE FROM {_table(ScheduleOccurrence)} WHERE schedule_id IN ({schedules})",
                [like])  # fmt: skip
    sql_execute(f"DELETE FROM {_table(BatchLog)} WHERE job_id IN ({jobs})", [like])
    sql_execute(f"DELETE FROM {_table(BatchSchedule)} WHERE job_id IN ({jobs})", [like])
    BatchJob.objects.filter(name__startswith=NAME_PREFIX).delete()
    deleted = sql_execute(f"DELETE FROM {_table(PeriodicTask)} WHERE name LIKE %s", [like])
    _delete_unused_dcb_schedules()
    if deleted:
        PeriodicTasks.update_changed()


def _delete_unused_dcb_schedules() -> None:
    """dcb's crontab, interval and clocked rows no PeriodicTask points at any more."""
    from django_celery_beat.models import (
        ClockedSchedule,
        CrontabSchedule,
        IntervalSchedule,
        PeriodicTask,
    )

    for model, column in (
        (CrontabSchedule, "crontab_id"),
        (IntervalSchedule, "interval_id"),
        (ClockedSchedule, "clocked_id"),
    ):
        sql_execute(
            f"DELETE FROM {_table(model)} WHERE id NOT IN "
            f"(SELECT {column} FROM {_table(PeriodicTask)} WHERE {column} IS NOT NULL)"
        )


@dataclass
class BeatSession:
    """A beat process of one scheduler and the watcher of the run's queue."""

    watcher: QueueWatcher
    beat: BeatProcess

    def check(self) -> None:
        self.beat.check_alive()
        self.watcher.check()

    def sleep_until(self, moment: float) -> None:
        """Sleep until unix time `moment`, checking that beat and the watcher are alive."""
        while (left := moment - time.time()) > 0:
            self.check()
            time.sleep(min(left, 0.25))

    def wait_for_message(self, matches: Callable) -> float | None:
        """Arrival time of the first new message that `matches`, or None after the timeout."""
        give_up = time.time() + EDIT_TIMEOUT_SECONDS
        checked = len(self.watcher.arrivals)
        while time.time() < give_up:
            self.check()
            arrivals = self.watcher.arrivals[checked:]
            for arrived, raw in arrivals:
                if matches(*decode_message(raw)):
                    return arrived
            checked += len(arrivals)
            time.sleep(POLL_SECONDS)
        print(f"  WARNING: no message within {EDIT_TIMEOUT_SECONDS:.0f} s of an edit")
        return None


@contextmanager
def beat_session(bench: Bench, label: str, scheduler: str, queue: str) -> Iterator[BeatSession]:
    """Watch `queue` and start beat with `scheduler`; stop both on the way out."""
    watcher = QueueWatcher(redis_client(), queue).start()
    beat = BeatProcess(
        label=label, scheduler=scheduler, log_dir=bench.log_dir, extra_env=bench.beat_env
    )
    try:
        yield BeatSession(watcher, beat)
    finally:
        beat.stop()
        watcher.stop()


@dataclass
class Arrivals:
    """The first arrival of each fired key; later messages for a key already seen (repeats)
    are counted apart: a second publish is not a second fire."""

    first: dict = field(default_factory=dict)
    repeats: list[float] = field(default_factory=list)

    def note(self, arrived: float, raw: bytes) -> None:
        key = decode_message(raw)[1][0]
        if key in self.first:
            self.repeats.append(arrived)
        else:
            self.first[key] = arrived


def next_minute(lead_seconds: float) -> datetime:
    """The first minute boundary at least `lead_seconds` from now (database clock)."""
    from batchjobs.models.clock import database_now

    earliest = database_now() + timedelta(seconds=lead_seconds)
    boundary = earliest.replace(second=0, microsecond=0)
    return boundary if boundary == earliest else boundary + timedelta(minutes=1)


# --- N schedules due at once ---------------------------------------------------------------------


@dataclass
class BurstPlan:
    """One burst run: N schedules of `scheduler` due at `due`, published to `queue`.
    `due_times(keys)` maps each fired key to the time it was due."""

    scheduler: str
    n: int
    due: datetime
    beat_class: str
    queue: str
    cap: float
    due_times: Callable[[object], dict]

    @property
    def label(self) -> str:
        return f"{self.scheduler}-{self.n}"


def burst_dcb(bench: Bench, n: int) -> BurstResult:
    """N PeriodicTasks sharing one crontab, due at the same minute, under dcb's beat."""
    label = f"dcb-{n}"
    queue = bench.queue(label)
    try:
        due = make_dcb_burst_tasks(bench, label, queue, n)
        plan = BurstPlan(
            "dcb", n, due, DCB_SCHEDULER, queue, bench.args.dcb_cap,
            due_times=lambda keys: dict.fromkeys(keys, due.timestamp()),
        )  # fmt: skip
        return run_burst(bench, plan)
    finally:
        bench.after_run()


def make_dcb_burst_tasks(bench: Bench, label: str, queue: str, n: int) -> datetime:
    """Create the N tasks on a crontab of a past minute, then move the crontab to the minute
    they are due at: dcb must not fire any before all exist. Returns that minute."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask, PeriodicTasks

    crontab = CrontabSchedule.objects.create(minute="0", hour="0", timezone="UTC")
    PeriodicTask.objects.bulk_create(
        (
            PeriodicTask(
                name=bench.name(f"{label}-{index}"),
                task=BENCH_TASK,
                crontab=crontab,
                args=json.dumps([index]),
                queue=queue,
            )  # fmt: skip
            for index in range(n)
        ),
        batch_size=5000,
    )
    # dcb reads every enabled task when it starts: give it time before the minute.
    due = next_minute(bench.args.lead + n / 1000)
    CrontabSchedule.objects.filter(pk=crontab.pk).update(minute=str(due.minute), hour=str(due.hour))
    PeriodicTasks.update_changed()
    sql_execute(f"ANALYZE {_table(PeriodicTask)}")
    return due


def burst_ours(bench: Bench, n: int) -> BurstResult:
    """N BatchSchedules of one noop job, due at the same minute, under our beat."""
    from batchjobs.models import BatchLog

    label = f"ours-{n}"
    queue = bench.queue(label)
    try:
        job = bench.our_job(label, queue)
        due = make_our_burst_schedules(bench, job, n)

        def due_times(keys) -> dict:
            rows = BatchLog.objects.filter(job=job).values_list("pk", "scheduled_for")
            return {pk: scheduled_for.timestamp() for pk, scheduled_for in rows}

        plan = BurstPlan("ours", n, due, OUR_SCHEDULER, queue, bench.args.ours_cap, due_times)
        result = run_burst(bench, plan)
        executions = BatchLog.objects.filter(job=job).count()
        if executions != result.fired:
            print(f"  NOTE: {executions} executions in the database, {result.fired} published")
        return result
    finally:
        bench.after_run()


def make_our_burst_schedules(bench: Bench, job, n: int) -> datetime:
    """Create the N schedules asleep (no next fire), then arm them all in one statement for
    the minute they are due at, which is returned."""
    from batchjobs.models import BatchSchedule

    BatchSchedule.objects.bulk_create(
        (
            BatchSchedule(job=job, kind="cron", cron_expression="0 0 1 1 *", timezone="UTC")
            for _ in range(n)
        ),
        batch_size=5000,
    )
    due = next_minute(bench.args.lead)
    BatchSchedule.objects.filter(job=job).update(
        cron_expression=f"{due.minute} {due.hour} * * *", next_fire_at=due
    )
    sql_execute(f"ANALYZE {_table(BatchSchedule)}")
    return due


def run_burst(bench: Bench, plan: BurstPlan) -> BurstResult:
    """Start beat before the minute, collect the messages until all N fired (or the cap), then
    summarise and print the run."""
    arrivals = Arrivals()
    recorder = None
    try:
        with beat_session(bench, plan.label, plan.beat_class, plan.queue) as session:
            started = session.beat.wait_started()
            if bench.args.py_spy and plan.scheduler == "ours":
                out_path = Path(bench.args.py_spy) / f"{plan.label}.txt"
                recorder = PySpyRecorder(session.beat.pid, out_path)
            announce_burst(plan, started)
            decoded, capped = wait_for_fires(session, plan, arrivals)
            stopped_at = time.time()
            rss_mb, cpu_s = session.beat.peak_rss_mb(), session.beat.cpu_seconds()
    finally:
        if recorder is not None:
            recorder.finish()
    # Messages that landed between the last check and beat's stop count too.
    for arrived, raw in session.watcher.arrivals[decoded:]:
        if arrived <= stopped_at:
            arrivals.note(arrived, raw)
    result = summarise_burst(plan, arrivals, rss_mb=rss_mb, cpu_s=cpu_s, capped=capped)
    print_burst(plan, result, arrivals)
    if recorder is not None:
        pyspy_report(recorder.out_path, focus="_fire_due", fires=result.fired)
    print(result.result_line())
    return result


def announce_burst(plan: BurstPlan, started: float) -> None:
    due_ts = plan.due.timestamp()
    print(
        f"  {plan.label}: beat started {due_ts - started:.1f} s before the due minute "
        f"{plan.due:%H:%M:%S} UTC; waiting for {plan.n} fires (cap {plan.cap:.0f} s after due)"
    )
    if started > due_ts:
        print("  WARNING: beat started after the due minute; use a larger --lead")


def wait_for_fires(session: BeatSession, plan: BurstPlan, arrivals: Arrivals) -> tuple[int, bool]:
    """Poll until N distinct keys have arrived or the cap has passed. Returns how many
    messages were decoded, and whether the cap ended the run."""
    deadline = plan.due.timestamp() + plan.cap
    decoded = 0
    while True:
        session.check()
        count = len(session.watcher.arrivals)
        # Decoding waits until N messages are in, so it takes no CPU from beat before.
        if count >= plan.n and count > decoded:
            for arrived, raw in session.watcher.arrivals[decoded:count]:
                arrivals.note(arrived, raw)
            decoded = count
            if len(arrivals.first) >= plan.n:
                return decoded, False
        if time.time() > deadline:
            return decoded, True
        time.sleep(POLL_SECONDS)


def summarise_burst(
    plan: BurstPlan, arrivals: Arrivals, *, rss_mb: float, cpu_s: float, capped: bool
) -> BurstResult:
    """Fire rate from the due minute to the last first publish; lag of each fire from its
    own due time."""
    due_ts = plan.due.timestamp()
    dues = plan.due_times(arrivals.first.keys())
    lags = [arrived - dues[key] for key, arrived in arrivals.first.items()]
    fired = len(arrivals.first)
    last = max(arrivals.first.values(), default=due_ts)
    return BurstResult(
        scheduler=plan.scheduler,
        n=plan.n,
        fired=fired,
        fires_per_s=fired / (last - due_ts) if fired and last > due_ts else 0.0,
        p50_s=percentile(lags, 0.50),
        p99_s=percentile(lags, 0.99),
        max_s=max(lags, default=NAN),
        rss_mb=rss_mb,
        cpu_s=cpu_s,
        capped=capped,
        duplicates=len(arrivals.repeats),
    )


def print_burst(plan: BurstPlan, result: BurstResult, arrivals: Arrivals) -> None:
    due_ts = plan.due.timestamp()
    last = max(arrivals.first.values(), default=due_ts)
    status = f"CAPPED at {plan.cap:.0f} s: " if result.capped else ""
    print(
        f"  {plan.label}: {status}fired {result.fired}/{plan.n}, last publish "
        f"{last - due_ts:.2f} s after due: {result.fires_per_s:.1f} fires/s; lag p50 "
        f"{result.p50_s:.3f} s, p99 {result.p99_s:.3f} s, max {result.max_s:.3f} s; beat peak "
        f"RSS {result.rss_mb:.1f} MB, beat CPU {result.cpu_s:.1f} s (whole life); "
        f"duplicate messages {result.duplicates}"
    )
    if last - due_ts > 2 * TIMELINE_SECONDS:
        print_timeline(due_ts, sorted(arrivals.first.values()), sorted(arrivals.repeats))


def print_timeline(due_ts: float, fires: list[float], repeats: list[float]) -> None:
    """New fires and repeated messages per TIMELINE_SECONDS after due: shows a rate that
    changes during the run (e.g. once beat starts re-sending executions nobody took)."""
    windows = int((max(fires[-1], repeats[-1] if repeats else 0) - due_ts) // TIMELINE_SECONDS) + 1
    cells = []
    for index in range(windows):
        low, high = due_ts + index * TIMELINE_SECONDS, due_ts + (index + 1) * TIMELINE_SECONDS
        new = bisect.bisect_left(fires, high) - bisect.bisect_left(fires, low)
        again = bisect.bisect_left(repeats, high) - bisect.bisect_left(repeats, low)
        cells.append(f"{index * TIMELINE_SECONDS:.0f}s {new}" + (f"+{again}r" if again else ""))
    print(f"  per {TIMELINE_SECONDS:.0f} s after due (new fires +repeats): {', '.join(cells)}")


# --- idle: one schedule every second -------------------------------------------------------------


def idle_dcb(bench: Bench) -> LagResult:
    """An IntervalSchedule of 1 s: Celery makes it due 1 s after the previous run was sent, so
    its lag is the gap between publishes minus 1 s."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    label = "dcb-idle"
    queue = bench.queue(label)
    duration = bench.args.idle_seconds
    try:
        interval = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.create(
            name=bench.name(label), task=BENCH_TASK, interval=interval, args="[0]", queue=queue
        )
        with beat_session(bench, label, DCB_SCHEDULER, queue) as session:
            window_start = session.beat.wait_started() + IDLE_WARM_UP_SECONDS
            window_end = window_start + duration
            session.sleep_until(window_end + 0.5)
        arrivals = session.watcher.arrivals
        times = sorted(at for at, _ in arrivals if window_start <= at < window_end)
        lags = [later - earlier - 1.0 for earlier, later in zip(times, times[1:], strict=False)]
        return idle_report(LagResult("dcb", "idle", lags, duration), len(times))
    finally:
        bench.after_run()


def idle_ours(bench: Bench) -> LagResult:
    """An interval schedule of 1 s created once beat runs; each fire's lag is its publish
    time minus the execution's scheduled_for."""
    from batchjobs.models import BatchLog

    label = "ours-idle"
    queue = bench.queue(label)
    duration = bench.args.idle_seconds
    try:
        job = bench.our_job(label, queue)
        with beat_session(bench, label, OUR_SCHEDULER, queue) as session:
            session.beat.wait_started()
            window_start = make_idle_schedule(job)
            window_end = window_start + duration
            session.sleep_until(window_end + 0.5)
        rows = BatchLog.objects.filter(job=job).values_list("pk", "scheduled_for")
        due = {pk: scheduled_for.timestamp() for pk, scheduled_for in rows}
        arrivals = Arrivals()  # the relay may re-send an execution nobody took in time
        for arrived, raw in session.watcher.arrivals:
            arrivals.note(arrived, raw)
        lags = [
            arrived - due[execution_id]
            for execution_id, arrived in arrivals.first.items()
            if window_start <= due[execution_id] < window_end
        ]
        if arrivals.repeats:
            print(f"  ours-idle: {len(arrivals.repeats)} repeated message(s) left out")
        return idle_report(LagResult("ours", "idle", lags, duration), len(lags))
    finally:
        bench.after_run()


def make_idle_schedule(job) -> float:
    """A 1-s interval schedule starting 2 s from now; returns the start of the measured window
    (unix time), which leaves out the first fire, as dcb's window leaves out its warm-up."""
    from batchjobs.models.clock import database_now
    from batchjobs.services.schedules import schedule_create

    start_at = database_now() + timedelta(seconds=2)
    schedule_create(
        job=job, kind="interval", interval_every=1, interval_unit="seconds", start_at=start_at
    )
    return (start_at + timedelta(seconds=1)).timestamp()


def idle_report(result: LagResult, fires: int) -> LagResult:
    print(
        f"  {result.scheduler}-idle: {fires} fires in {result.expected} s; fire lag "
        f"p50 {result.p50 * 1000:.1f} ms, p99 {result.p99 * 1000:.1f} ms, "
        f"max {result.max * 1000:.1f} ms"
    )
    print(
        f"IDLE scheduler={result.scheduler} seconds={result.expected} fires={fires} "
        f"p50_s={result.p50:.4f} p99_s={result.p99:.4f} max_s={result.max:.4f}"
    )
    return result


# --- edits while beat sleeps ---------------------------------------------------------------------


def run_edits(bench: Bench, session: BeatSession, edit_once: Callable) -> list[float]:
    """Latency of each of --edits edits: `edit_once(session, index)` makes a schedule due
    EDIT_DELAY later and returns the edit's start and a matcher of its message."""
    session.beat.wait_started()
    session.sleep_until(time.time() + EDIT_WARM_UP_SECONDS)
    latencies = []
    for index in range(bench.args.edits):
        edited, matches = edit_once(session, index)
        arrived = session.wait_for_message(matches)
        latencies.append(arrived - edited if arrived else NAN)
    return latencies


def random_pause(bench: Bench, session: BeatSession) -> None:
    """Lands the next edit at a random phase of beat's wait (dcb wakes every 5 s)."""
    session.sleep_until(time.time() + bench.rng.uniform(0.3, 5.3))


def edit_dcb(bench: Bench) -> LagResult:
    """Each edit creates a one-off ClockedSchedule task due 0.2 s later."""
    from django.utils import timezone
    from django_celery_beat.models import ClockedSchedule, PeriodicTask

    label = "dcb-edit"
    queue = bench.queue(label)

    def edit_once(session: BeatSession, index: int):
        random_pause(bench, session)
        edited = time.time()
        clocked = ClockedSchedule.objects.create(clocked_time=timezone.now() + EDIT_DELAY)
        PeriodicTask.objects.create(
            name=bench.name(f"{label}-{index}"), task=BENCH_TASK, clocked=clocked,
            one_off=True, args=json.dumps([index]), queue=queue,
        )  # fmt: skip
        return edited, lambda task, args, headers: args == [index]

    try:
        with beat_session(bench, label, DCB_SCHEDULER, queue) as session:
            latencies = run_edits(bench, session, edit_once)
        return edit_report(LagResult("dcb", "edit", latencies, bench.args.edits), "")
    finally:
        bench.after_run()


def edit_ours(bench: Bench) -> LagResult:
    """Edits alternate: creating a schedule due 0.2 s later, and moving an existing one (due
    in an hour) to 0.2 s later."""
    label = "ours-edit"
    queue = bench.queue(label)
    by_variant: dict[str, list[float]] = {"create": [], "update": []}
    try:
        job = bench.our_job(label, queue)
        with beat_session(bench, label, OUR_SCHEDULER, queue) as session:
            latencies = run_edits(bench, session, our_edit(bench, job))
        for index, latency in enumerate(latencies):
            by_variant["update" if index % 2 else "create"].append(latency)
        detail = "; ".join(
            f"{variant} max {max(values):.3f} s" for variant, values in by_variant.items() if values
        )
        return edit_report(LagResult("ours", "edit", latencies, bench.args.edits), detail)
    finally:
        bench.after_run()


def our_edit(bench: Bench, job) -> Callable:
    """edit_once for our scheduler: odd edits update a schedule made before the pause."""
    from batchjobs.models import BatchLog
    from batchjobs.models.clock import database_now
    from batchjobs.services.schedules import schedule_create, schedule_update

    def edit_once(session: BeatSession, index: int):
        if index % 2:
            schedule = schedule_create(
                job=job, kind="once", run_at=database_now() + timedelta(hours=1)
            )
        random_pause(bench, session)
        edited = time.time()
        if index % 2:
            schedule_update(schedule=schedule, run_at=database_now() + EDIT_DELAY)
        else:
            schedule = schedule_create(job=job, delay_seconds=EDIT_DELAY.total_seconds())

        def fired_by(task, args, headers) -> bool:
            return BatchLog.objects.filter(pk=args[0], schedule_id=schedule.pk).exists()

        return edited, fired_by

    return edit_once


def edit_report(result: LagResult, detail: str) -> LagResult:
    values = [value for value in result.values if value == value]
    missed = len(result.values) - len(values)
    print(
        f"  {result.scheduler}-edit: {len(values)}/{result.expected} edits fired; "
        f"edit -> publish (due 0.2 s after the edit) p50 {percentile(values, 0.5):.3f} s, "
        f"max {max(values, default=NAN):.3f} s"
        + (f" ({detail})" if detail else "")
        + (f"; {missed} never fired within {EDIT_TIMEOUT_SECONDS:.0f} s" if missed else "")
    )
    print(
        f"EDIT scheduler={result.scheduler} edits={result.expected} fired={len(values)} "
        f"p50_s={percentile(values, 0.5):.3f} max_s={max(values, default=NAN):.3f}"
    )
    return result


# --- command line --------------------------------------------------------------------------------

# --quick: small N and short runs, to debug.
DEFAULTS = {"sizes": "1000,10000,100000", "dcb_cap": 300.0, "lead": 20.0, "idle_seconds": 60,
            "edits": 10}  # fmt: skip
QUICK_DEFAULTS = {"sizes": "200", "dcb_cap": 60.0, "lead": 10.0, "idle_seconds": 10, "edits": 4}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--sizes", help="comma-separated N (default 1000,10000,100000; --quick: 200)")
    add("--dcb-max-n", type=int, default=10_000, help="run dcb only up to this N (default 10000)")
    add("--dcb-cap", type=float, help="stop a dcb run this long after due (default 300; quick 60)")
    add("--ours-cap", type=float, default=300.0, help="the same bound for ours (default 300)")
    add("--lead", type=float, help="beat start before the due minute, s (default 20; quick 10)")
    add("--idle-seconds", type=int, help="idle run length (default 60; quick 10)")
    add("--edits", type=int, help="edits per scheduler (default 10; quick 4)")
    add("--parts", default="burst,idle,edit", help="which parts to run (default burst,idle,edit)")
    add("--only", choices=("both", "ours", "dcb"), default="both", help="which scheduler(s)")
    add(
        "--py-spy",
        metavar="DIR",
        help="profile our beat in burst runs with py-spy (sampling waits too), report per fire",
    )
    add(
        "--beat-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="environment for the beat processes, e.g. BATCHJOBS_RELAY_AFTER_SECONDS=3600",
    )
    add("--quick", action="store_true", help="small N and short runs, to debug")
    add("--keep-db", action="store_true", help="keep the (emptied) bench database")
    add("--keep-logs", action="store_true", help="keep the beat logs")
    return parser


def parse_args() -> argparse.Namespace:
    """The options, defaults filled in (--quick's if given), checked; adds `sizes_list` and
    `parts_set`."""
    parser = build_parser()
    args = parser.parse_args()
    for name, value in (QUICK_DEFAULTS if args.quick else DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    sizes = [size for size in args.sizes.split(",") if size.strip()]
    try:
        args.sizes_list = [int(size.replace("_", "")) for size in sizes]
    except ValueError:
        parser.error("--sizes takes comma-separated integers")
    args.parts_set = {part.strip() for part in args.parts.split(",")}
    if not args.sizes_list or min(args.sizes_list) < 1 or args.idle_seconds < 2 or args.edits < 1:
        parser.error("sizes must be >= 1, --idle-seconds >= 2, --edits >= 1")
    if any("=" not in setting for setting in args.beat_env):
        parser.error("--beat-env takes NAME=VALUE")
    if args.parts_set - {"burst", "idle", "edit"}:
        parser.error("--parts takes burst, idle and edit")
    if args.py_spy:
        Path(args.py_spy).mkdir(parents=True, exist_ok=True)
    return args


# --- main ----------------------------------------------------------------------------------------


def prepare_database(config: dict) -> None:
    """A fresh, migrated bench database (dropped again if Django cannot start on it)."""
    create_database(config)
    try:
        setup_django()
    except BaseException:
        drop_database(config)
        raise


def print_header(args: argparse.Namespace, config: dict) -> None:
    from django.conf import settings

    from batchjobs.models.clock import database_now

    skew_ms = (database_now().timestamp() - time.time()) * 1000
    print(
        f"scheduler bench: sizes={args.sizes_list} dcb up to N={args.dcb_max_n}, dcb cap "
        f"{args.dcb_cap:.0f} s, ours cap {args.ours_cap:.0f} s, idle {args.idle_seconds} s, "
        f"{args.edits} edits; database {config['NAME']}, redis {settings.REDIS_URL}; "
        f"database clock - local clock {skew_ms:+.1f} ms"
        + (f"; beat env {' '.join(args.beat_env)}" if args.beat_env else "")
    )


def run_parts(bench: Bench, results: Results) -> None:
    """The parts asked for, dcb before ours in each, results added as they come."""
    args = bench.args
    run_dcb, run_ours = args.only in ("both", "dcb"), args.only in ("both", "ours")
    if "burst" in args.parts_set:
        for n in args.sizes_list:
            print(f"\n-- {n:,} schedules due at the same minute --")
            if run_dcb and n <= args.dcb_max_n:
                results.bursts.append(burst_dcb(bench, n))
            if run_ours:
                results.bursts.append(burst_ours(bench, n))
    if "idle" in args.parts_set:
        print(f"\n-- idle: one schedule every second for {args.idle_seconds} s --")
        for runs, run in ((run_dcb, idle_dcb), (run_ours, idle_ours)):
            if runs:
                results.idle.append(run(bench))
    if "edit" in args.parts_set:
        print(f"\n-- edits while beat sleeps: due {EDIT_DELAY.total_seconds()} s after --")
        for runs, run in ((run_dcb, edit_dcb), (run_ours, edit_ours)):
            if runs:
                results.edits.append(run(bench))


def clean_up(bench: Bench | None, args, config: dict, log_dir: Path, failed: bool) -> None:
    """Delete the bench's rows and keys, drop its database (unless --keep-db) and remove the
    beat logs (kept with --keep-logs or after a failure)."""
    if bench is not None:
        try:
            bench.after_run()
            bench.delete_new_keys()
        except Exception as exc:  # the database may be what failed; it is dropped anyway
            print(f"scheduler bench: cleanup failed: {exc!r}", file=sys.stderr)
    if args.keep_db:
        print(f"kept database {config['NAME']} (bench rows deleted)")
    else:
        drop_database(config)
    if failed or args.keep_logs:
        print(f"beat logs: {log_dir}")
    else:
        shutil.rmtree(log_dir, ignore_errors=True)


def main() -> int:
    args = parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    config = config_or_report("scheduler bench", check_environment)
    if config is None:
        return 2
    prepare_database(config)
    log_dir = Path(tempfile.mkdtemp(prefix="bj_sched_bench-logs-"))
    print_header(args, config)
    results = Results()
    failed = False
    bench = None
    try:
        bench = Bench(args, log_dir)
        run_parts(bench, results)
    except (BenchError, KeyboardInterrupt) as exc:
        failed = True
        print(f"scheduler bench: {exc!r}", file=sys.stderr)
    finally:
        clean_up(bench, args, config, log_dir, failed)
    print_summary(results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
