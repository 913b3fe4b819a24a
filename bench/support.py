"""What the benches share: their error, a PostgreSQL database of a bench's own, the figures
they read off /proc (CPU time, peak RSS) and percentiles, and the failures of the processes
they start (tests/support/processes.py's Process) as bench errors.

A bench touches only a database whose name starts with its own prefix (bj_sched_bench*,
bj_soak*), so that a mistyped DATABASE_URL can never point it at a database it did not make.
"""

import math
import os
import signal
import sys
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path


class BenchError(Exception):
    """A bench cannot run or a run went wrong; the message says why."""


def database_config(*, prefix: str, bench: str, usage: str, postgres_reason: str = "") -> dict:
    """The parsed DATABASE_URL, checked: PostgreSQL, and a database named `prefix`*.

    `bench` names the bench in the messages ("the soak"), `usage` says what it does with the
    database, `postgres_reason` why it needs PostgreSQL (a sentence fragment, may be empty).
    """
    import environ

    url = os.environ.get("DATABASE_URL", "")
    if not url:
        raise BenchError(
            f"DATABASE_URL is not set: {bench} needs PostgreSQL, e.g. "
            f"DATABASE_URL=postgres://postgres@127.0.0.1:5432/{prefix}"
        )
    config = environ.Env.db_url_config(url)
    if "postgresql" not in config["ENGINE"]:
        reason = f" ({postgres_reason})" if postgres_reason else ""
        raise BenchError(
            f"DATABASE_URL points at {config['ENGINE']}: {bench} needs PostgreSQL{reason}"
        )
    if not str(config["NAME"]).startswith(prefix):
        raise BenchError(
            f"database {config['NAME']!r}: use a database of {bench}'s own, named "
            f"{prefix}*; {bench} {usage}"
        )
    return config


def config_or_report(bench: str, check: Callable[[], dict]) -> dict | None:
    """`check()`'s database config, or None after printing why the bench cannot run (its
    caller then exits with status 2)."""
    try:
        return check()
    except BenchError as exc:
        print(f"{bench}: {exc}", file=sys.stderr)
        return None


def exit_on_sigterm() -> None:
    """A plain kill must still run a bench's clean-up (stop processes, drop the database)."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def redis_url_check(example: str) -> None:
    """Fail unless REDIS_URL is set; `example` is a value to suggest."""
    if not os.environ.get("REDIS_URL"):
        raise BenchError(f"REDIS_URL is not set, e.g. REDIS_URL={example}")


@contextmanager
def _server_connection(config: dict):
    """A connection to the server's `postgres` database (for CREATE/DROP DATABASE); a failure
    of the server is a BenchError that names it."""
    import psycopg

    host, port = config.get("HOST") or None, config.get("PORT") or None
    try:
        with psycopg.connect(
            dbname="postgres",
            autocommit=True,
            host=host,
            port=port,
            user=config.get("USER") or None,
            password=config.get("PASSWORD") or None,
        ) as connection:
            yield connection
    except psycopg.Error as exc:
        raise BenchError(f"PostgreSQL at {host}:{port}: {exc}") from exc


def database_recreate(config: dict) -> None:
    """Drop the database if it exists and create it empty."""
    from psycopg import sql

    name = sql.Identifier(config["NAME"])
    with _server_connection(config) as connection:
        # FORCE ends sessions a killed earlier run may have left behind.
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(name))


def database_ensure(config: dict) -> bool:
    """Create the database if it is missing; True if it was created."""
    from psycopg import sql

    with _server_connection(config) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]
        ).fetchone()
        if exists:
            return False
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config["NAME"])))
        return True


def database_drop(config: dict, *, prefix: str) -> None:
    """Close Django's connections (if it is set up) and drop the database, which must be named
    `prefix`*."""
    from django.apps import apps
    from django.db import connections
    from psycopg import sql

    if apps.ready:
        connections.close_all()
    assert config["NAME"].startswith(prefix)
    with _server_connection(config) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(config["NAME"])
            )
        )


def database_drop_reporting(config: dict, *, prefix: str, bench: str) -> None:
    """database_drop for a bench already failing or finishing: a failure is printed, so that
    it does not mask the bench's own outcome."""
    try:
        database_drop(config, prefix=prefix)
    except BenchError as exc:
        print(f"{bench}: could not drop {config['NAME']}: {exc}", file=sys.stderr)


def django_setup_and_migrate(aliases: list[str] | None = None) -> None:
    """django.setup() under DJANGO_SETTINGS_MODULE, then migrate `aliases` (default: all)."""
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    for alias in aliases or settings.DATABASES:
        call_command("migrate", database=alias, interactive=False, verbosity=0)


def django_setup_default() -> None:
    """Django under the base settings (unless DJANGO_SETTINGS_MODULE says otherwise), with
    the default database migrated: what the side-by-side benches measure against."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    django_setup_and_migrate(["default"])


def redis_py_url(url: str) -> str:
    """redis-py spelling of a kombu Redis URL (the embedded default uses `redis+socket://`)."""
    if url.startswith("redis+socket://"):
        return "unix://" + url.removeprefix("redis+socket://")
    return url


def redis_client():
    """A new redis-py client of the settings' REDIS_URL (Django must be set up)."""
    import redis
    from django.conf import settings

    return redis.Redis.from_url(redis_py_url(settings.REDIS_URL))


def queue_keys_delete(client, prefix: str) -> int:
    """Delete the Redis keys of every kombu queue whose name starts with `prefix`: kombu keeps
    a queue as one list per priority step, each named after the queue, and a binding set."""
    keys = [
        *client.scan_iter(match=f"{prefix}*", count=1000),
        *client.scan_iter(match=f"_kombu.binding.{prefix}*", count=1000),
    ]
    return client.delete(*keys) if keys else 0


# --- measuring ----------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of `values` (q in 0..1); nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads included; 0 if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # Fields after the command name, which may itself hold spaces and parentheses; utime and
    # stime are fields 14 and 15 of stat(5), so 12 and 13 after the ")".
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is `pid` (a prefork worker's pool children), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def peak_rss_mb(pid: int | str = "self") -> float:
    """Peak resident set (VmHWM) of a process, in MiB; nan if the kernel does not say."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- processes (tests/support/processes.py) -------------------------------------------------------


def process_check_alive(process) -> None:
    """Fail the bench if `process` (a tests.support.processes.Process) has exited."""
    if process.popen.poll() is not None:
        raise BenchError(
            f"{process.name} exited early, see {process.log_path}:\n{process.log()[-3000:]}"
        )


def process_wait_for_log(process, text: str, *, timeout: float, interval: float = 0.1) -> None:
    """Process.wait_for_log, whose failure (the process exited, or never logged `text`) fails
    the bench."""
    try:
        process.wait_for_log(text, timeout, interval=interval)
    except (RuntimeError, TimeoutError) as exc:
        raise BenchError(f"{exc}\n(log: {process.log_path})") from exc
