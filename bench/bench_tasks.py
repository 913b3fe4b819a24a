"""The bare Celery task the worker benchmark compares the execution path with, and an opt-in
profiler for worker children.

The worker imports this module with `-I bench.bench_tasks`, so the bare task lives on the same
Celery app, the same queue and the same worker settings as `batchjobs.execute`.
"""

import cProfile
import json
import os
import time
from collections import Counter

from celery import signals

from bench.support import redis_client as support_redis_client
from config.celery_app import app

_client = None


def redis_client():
    # One client per child process, made after the fork: a connection must not cross it.
    global _client
    if _client is None:
        _client = support_redis_client()
    return _client


@app.task(name="bench.noop", ignore_result=True, acks_late=True)
def noop(key: str) -> None:
    """Do nothing, then record when: the earliest start and the latest end over all tasks of a
    run (ZADD LT/GT keep the extremes exactly, whatever order children write in) and a count,
    in one round trip, the cheapest honest stopwatch a bare task can carry."""
    started = time.time()
    finished = time.time()
    pipe = redis_client().pipeline(transaction=False)
    pipe.zadd(f"{key}:edges", {"first": started}, lt=True)
    pipe.zadd(f"{key}:edges", {"last": finished}, gt=True)
    pipe.incr(f"{key}:done")
    pipe.execute()


# --- profiling (BENCH_PROFILE_DIR set by `worker_throughput.py --profile DIR`) ---------------

_PROFILE_DIR = os.environ.get("BENCH_PROFILE_DIR")
_profile: cProfile.Profile | None = None
# SQL text (with placeholders) -> [count, seconds]: which statements a task costs, and how much.
_queries: dict[str, list[float]] = {}
_query_threads: Counter[str] = Counter()


def _count_query(execute, sql, params, many, context):
    import threading

    begun = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        entry = _queries.setdefault(sql, [0, 0.0])
        entry[0] += 1
        entry[1] += time.perf_counter() - begun
        _query_threads[threading.current_thread().name] += 1


def _watch_connection(sender, connection, **kwargs):
    if _count_query not in connection.execute_wrappers:
        connection.execute_wrappers.append(_count_query)


@signals.worker_process_init.connect
def _start_profile(**kwargs):
    global _profile
    if not _PROFILE_DIR:
        return
    from django.db import connections
    from django.db.backends.signals import connection_created

    # Connections opened before the fork are closed by Celery's fixup; new ones get the counter,
    # and so do any already open in this child.
    connection_created.connect(_watch_connection, weak=False)
    for connection in connections.all(initialized_only=True):
        _watch_connection(None, connection)
    _profile = cProfile.Profile()
    _profile.enable()


@signals.worker_process_shutdown.connect
def _dump_profile(**kwargs):
    if _profile is None:
        return
    _profile.disable()
    pid = os.getpid()
    _profile.dump_stats(os.path.join(_PROFILE_DIR, f"child-{pid}.pstats"))
    with open(os.path.join(_PROFILE_DIR, f"child-{pid}-queries.json"), "w") as out:
        json.dump({"queries": _queries, "threads": _query_threads}, out, indent=1)
