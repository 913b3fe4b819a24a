import signal

import pytest
from django.conf import settings
from django.db import connections

from batchjobs.embedded_redis import embedded_redis_start
from tests.support.processes import (
    PrivateRedis,
    Process,
    queue_purge,
    start_beat,
    start_lane,
    start_worker,
)
from tests.support.runs import IN_PROCESS_QUEUE


@pytest.fixture(scope="session", autouse=True)
def redis_broker():
    """The broker: REDIS_URL's server, or the embedded one when REDIS_URL is not set."""
    import os

    process = None
    if "REDIS_URL" not in os.environ:
        process = embedded_redis_start(settings.EMBEDDED_REDIS_SOCKET)
    from config.celery_app import app

    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=3)
    # Messages left by an earlier, interrupted run would point at ids of another database.
    queue_purge()
    queue_purge(settings.BATCHJOBS_HTTP_QUEUE)
    queue_purge(IN_PROCESS_QUEUE)
    yield
    if process:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="session")
def worker(django_db_setup, django_db_blocker):
    """The workers as production runs them, shared by the integration tests: one prefork
    worker (2 children) on the default queue, and an I/O lane (gevent) for HTTP jobs. The
    prefork one is returned."""
    with django_db_blocker.unblock():
        process = start_worker()
        lane = start_lane()
    yield process
    lane.stop()
    process.stop()


# The session's beat while it runs (started by the first test that asks for it).
_session_beats: list[Process] = []


@pytest.fixture(scope="session")
def beat(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        process = start_beat()
    _session_beats.append(process)
    yield process
    _session_beats.remove(process)
    process.stop()


@pytest.fixture
def session_beat_paused():
    """For a test whose own beat must be the only one on the database: the session's beat,
    when an earlier test started it, would otherwise fire the test's schedules or relay its
    runs to the session's broker. It is frozen (SIGSTOP) before the test makes anything and
    let go (SIGCONT) when the test ends, before the database is flushed (ask for this fixture
    after the database's, so that it ends first)."""
    for process in _session_beats:
        process.kill(signal.SIGSTOP)
    yield
    for process in _session_beats:
        process.kill(signal.SIGCONT)


@pytest.fixture
def cache_redis(settings):
    """The default cache on a private Redis server of its own, which the test may stop() to
    take the cache away (the broker stays where it was)."""
    server = PrivateRedis()
    server.start()
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": server.url}}
    yield server
    server.stop()


@pytest.fixture(scope="session", autouse=True)
def flush_retried_on_deadlock():
    """A transactional test ends with a TRUNCATE of every table, which takes each table's
    exclusive lock in turn, while the shared worker and beat (real processes) may still be
    finishing a run that locks two of them in the other order. PostgreSQL then ends one side
    as a deadlock; when it picks the TRUNCATE, the flush is simply tried again."""
    from django.db import OperationalError
    from django.test import TransactionTestCase

    teardown = TransactionTestCase._fixture_teardown

    def retried(self):
        for attempt in range(3):
            try:
                return teardown(self)
            except Exception as exc:  # flush wraps the OperationalError in a CommandError
                cause = exc.__cause__ or exc
                if attempt == 2 or not (
                    isinstance(cause, OperationalError) and "deadlock" in str(cause)
                ):
                    raise
        return None

    TransactionTestCase._fixture_teardown = retried
    yield
    TransactionTestCase._fixture_teardown = teardown


@pytest.fixture
def alias_of_default():
    """Another alias for batchjobs' own database, its host and port spelled differently."""
    own = connections["default"].settings_dict
    host = "localhost" if own.get("HOST") in ("127.0.0.1", "") else own.get("HOST")
    connections.settings["orchestrator"] = {**own, "HOST": host}
    yield "orchestrator"
    if hasattr(connections._connections, "orchestrator"):
        connections["orchestrator"].close()
        del connections["orchestrator"]
    del connections.settings["orchestrator"]
