"""PostgreSQL restarted while workers record outcomes (issue 11, 3): every call that got its
answer keeps it; none is made twice. A private cluster stands in for the database, so that
restarting it touches nothing else on the machine."""

import time
from contextlib import contextmanager

import psycopg
import pytest
from django.core.management import call_command
from django.db import connections

from batchjobs.models import BatchLog, ExecutionStatus
from batchjobs.models.execution import FINAL_STATUSES
from tests.support.checker import check_invariants
from tests.support.engines import postgresql_only
from tests.support.factories import http_job, start
from tests.support.processes import PrivatePostgres, start_beat, start_worker, wait_until

pytestmark = [
    pytest.mark.integration,
    postgresql_only(
        "restarts a PostgreSQL server under the workers; SQLite, a file, has no server to restart"
    ),
]
QUEUE = "faults-db-restart"
# Long enough that no attempt is reaped while the database is away: what is tested is that
# the worker itself records what it got.
RESTART_ENV = {"BATCHJOBS_HEARTBEAT_TIMEOUT_SECONDS": "20"}
DOWN_SECONDS = 2.0


@contextmanager
def database_at(url: str, database: str):
    """Point this process's default connection (and so the workers and beats started
    meanwhile, see tests/support/processes.py) at another PostgreSQL."""
    default = connections["default"]
    saved = dict(default.settings_dict)
    default.close()
    default.settings_dict.update(
        NAME=database, HOST="127.0.0.1", PORT=url.rsplit(":", 1)[1].split("/")[0],
        USER="postgres", PASSWORD="",
    )  # fmt: skip
    try:
        yield
    finally:
        default.close()
        default.settings_dict.clear()
        default.settings_dict.update(saved)


@pytest.fixture
def private_database(django_db_blocker):
    server = PrivatePostgres()
    try:
        server.start()
        with psycopg.connect(server.url(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE batchjobs")
        with django_db_blocker.unblock(), database_at(server.url(), "batchjobs"):
            call_command("migrate", verbosity=0, interactive=False)
            yield server
    finally:
        server.remove()


def test_a_database_restart_while_outcomes_are_recorded_loses_none(private_database, sink):
    worker = start_worker(queues=QUEUE, concurrency=4, **RESTART_ENV)
    beat = start_beat(**RESTART_ENV)
    try:
        job = http_job(sink.url("/slow/1"), queue=QUEUE, max_attempts=3, timeout_seconds=10)
        executions = [start(job) for _ in range(12)]
        # calls in flight: their answers arrive while the database is away
        wait_until(lambda: sum(seen.finished is None for seen in sink.requests) >= 3,
                   timeout=30, message="no calls in flight")  # fmt: skip
        private_database.stop("fast")
        time.sleep(DOWN_SECONDS)
        private_database.start()
        connections["default"].close()  # ours died with the server too
        ids = [e.pk for e in executions]
        wait_until(
            lambda: BatchLog.objects.filter(pk__in=ids, status__in=FINAL_STATUSES).count()
            == len(ids),
            timeout=90, message="executions did not all end",
        )  # fmt: skip
        log = worker.log()
    finally:
        worker.stop()
        beat.stop()
    statuses = dict(BatchLog.objects.filter(pk__in=ids).values_list("pk", "status"))
    assert set(statuses.values()) == {ExecutionStatus.COMPLETED}, statuses
    calls = {key: len(sink.for_key(str(key))) for key in ids}
    assert set(calls.values()) == {1}, f"calls per idempotency key: {calls}"
    # the outage did meet outcomes being recorded (else this test proves nothing)
    assert "the database is away; recording its outcome again" in log, "no outcome met it"
    check_invariants(sink=sink)
