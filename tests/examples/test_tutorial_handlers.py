"""The tutorial's nine handlers, run as a worker runs them, against the real engines: SQLite
always; PostgreSQL and MariaDB/MySQL where BATCHJOBS_DATABASE_POSTGRES_URL and
BATCHJOBS_DATABASE_MYSQL_URL configure the `postgres` and `mysql` aliases. CI configures both in
both of its passes, and then a server that does not answer fails these tests (pytest-django
cannot create their test databases): a test is skipped only when its variable is not set at
all, and its reason names the variable."""

import time

import pytest
from django.conf import settings
from django.db import DatabaseError, connections

from batchjobs.models import ExecutionStatus
from batchjobs_examples.handlers import concurrent_queries, read_only_transaction
from batchjobs_examples.models import TutorialCustomer
from batchjobs_examples.tutorial import do_work, table_exists, tutorial_database

# Autouse: the heartbeat threads' sessions are ended so that the test databases can be dropped.
from tests.handlers.conftest import no_session_left_on_the_test_databases  # noqa: F401

VARIABLES = {
    "sqlite": "BATCHJOBS_DATABASE_SQLITE_URL",
    "postgres": "BATCHJOBS_DATABASE_POSTGRES_URL",
    "mysql": "BATCHJOBS_DATABASE_MYSQL_URL",
}
CONFIGURED = [alias for alias in VARIABLES if alias in settings.DATABASES]
TABLE = TutorialCustomer._meta.db_table

# Real transactions on every database the handlers use (batchjobs' own included: the runs are
# recorded there): what a handler commits or rolls back is what the next connection sees.
pytestmark = pytest.mark.django_db(transaction=True, databases=["default", *CONFIGURED])


def needs(*aliases: str) -> pytest.MarkDecorator:
    """Skip unless the aliases are configured: only when their variables are not set at all."""
    missing = [VARIABLES[alias] for alias in aliases if alias not in CONFIGURED]
    return pytest.mark.skipif(bool(missing), reason=f"set {' and '.join(missing)} to run it")


def on(*aliases: str, name: str | None = None):
    """A parameter of the test: these aliases, skipped unless all are configured."""
    return pytest.param(*aliases, marks=needs(*aliases), id=name or "-".join(aliases))


ENGINES = [on("sqlite"), on("postgres"), on("mysql")]
VENDORS = {"sqlite": "sqlite", "postgres": "postgresql", "mysql": "mysql"}


@pytest.fixture(autouse=True)
def no_tutorial_table():
    """Each test starts without the table (the handlers create it) and leaves none behind: the
    table is not Django's to flush, it is the operator's."""

    def drop() -> None:
        for alias in CONFIGURED:
            with connections[alias].cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
                if connections[alias].vendor == "postgresql":
                    cursor.execute("DROP FUNCTION IF EXISTS refuse_customer()")

    drop()
    yield
    drop()


def customers(alias: str, **rows: tuple[str, bool]) -> None:
    """Create customers on `alias`: email local part -> (name, active)."""
    tutorial_database(alias)
    for local, (name, active) in rows.items():
        TutorialCustomer.objects.using(alias).create(
            email=f"{local}@example.com", name=name, active=active
        )


def state(alias: str) -> dict[str, tuple]:
    if not table_exists(alias):
        return {}
    return {
        c.email: (c.name, c.active, c.version)
        for c in TutorialCustomer.objects.using(alias).order_by("email")
    }


def synced(alias: str) -> dict[str, int | None]:
    return dict(TutorialCustomer.objects.using(alias).values_list("email", "synced_version"))


def refuse(alias: str, email: str, operation: str) -> None:
    """Make the database `alias` refuse to `operation` (INSERT, UPDATE) the customer `email`, by
    a trigger: the failure comes from the database, in the middle of the handler's transaction."""
    connection = connections[alias]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION refuse_customer() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "BEGIN RAISE EXCEPTION 'customer refused'; END $$"
            )
            cursor.execute(
                f"CREATE TRIGGER refuse_customer BEFORE {operation} ON {TABLE} FOR EACH ROW "
                f"WHEN (NEW.email = '{email}') EXECUTE FUNCTION refuse_customer()"
            )
        elif connection.vendor == "mysql":
            cursor.execute(
                f"CREATE TRIGGER refuse_customer BEFORE {operation} ON {TABLE} FOR EACH ROW "
                f"BEGIN IF NEW.email = '{email}' THEN SIGNAL SQLSTATE '45000' "
                "SET MESSAGE_TEXT = 'customer refused'; END IF; END"
            )
        else:
            cursor.execute(
                f"CREATE TRIGGER refuse_customer BEFORE {operation} ON {TABLE} FOR EACH ROW "
                f"WHEN NEW.email = '{email}' BEGIN SELECT RAISE(ABORT, 'customer refused'); END"
            )


def failed_for_good(execution, message: str) -> None:
    """Failed at its first attempt (not retried although the job allows three), saying why."""
    assert execution.status == ExecutionStatus.FAILED
    assert execution.attempts == 1
    assert message in execution.error


# --- sqlite_crud, postgres_crud, mysql_crud ----------------------------------------------------


@pytest.mark.parametrize("alias", ENGINES)
def test_crud_creates_reads_updates_and_deletes_on_its_engine(run_handler_job, alias):
    # given: no table yet
    assert not table_exists(alias)
    crud = f"examples.{alias}_crud"

    # when: created
    first = run_handler_job(
        crud,
        {
            "upsert": [
                {"email": "ann@example.com", "name": "Ann"},
                {"email": "bob@example.com", "name": "Bob", "active": False},
            ]
        },
    )

    # then: the table was made, and the rows read back inside the transaction
    assert first.status == ExecutionStatus.COMPLETED, first.error
    assert first.result == {
        "database": alias,
        "created": 2,
        "updated": 0,
        "deleted": 0,
        "read": [["ann@example.com", "Ann", True, 1], ["bob@example.com", "Bob", False, 1]],
    }

    # when: one updated, one deleted, one created
    second = run_handler_job(
        crud,
        {
            "upsert": [
                {"email": "ann@example.com", "name": "Anne"},
                {"email": "cid@example.com", "name": "Cid"},
            ],
            "delete": ["bob@example.com"],
        },
    )

    # then
    assert (second.result["created"], second.result["updated"], second.result["deleted"]) == (
        1,
        1,
        1,
    )
    assert state(alias) == {
        "ann@example.com": ("Anne", True, 2),
        "cid@example.com": ("Cid", True, 1),
    }


@pytest.mark.parametrize("alias", ENGINES)
def test_crud_rolls_back_everything_when_one_write_fails(run_handler_job, alias):
    # given
    customers(alias, ann=("Ann", True), bob=("Bob", True))
    refuse(alias, "zed@example.com", "INSERT")
    before = state(alias)

    # when: an update, a create and a delete around the refused create
    execution = run_handler_job(
        f"examples.{alias}_crud",
        {
            "upsert": [
                {"email": "ann@example.com", "name": "Anne"},
                {"email": "new@example.com", "name": "New"},
                {"email": "zed@example.com", "name": "Zed"},
            ],
            "delete": ["bob@example.com"],
        },
        max_attempts=1,
    )

    # then
    assert execution.status == ExecutionStatus.FAILED
    assert "customer refused" in execution.error
    assert state(alias) == before


def test_crud_refuses_a_database_of_another_engine(run_handler_job):
    execution = run_handler_job("examples.postgres_crud", {"database": "sqlite"})

    failed_for_good(execution, "database 'sqlite' is sqlite, not postgresql")


@pytest.mark.parametrize(
    "handler_name", ["examples.mysql_crud", "examples.do_work_pattern", "examples.service_layer"]
)
def test_an_alias_not_configured_fails_for_good_naming_the_variable(run_handler_job, handler_name):
    params = {"database": "nowhere"}
    if handler_name == "examples.service_layer":
        params["deactivate"] = ["ann@example.com"]

    execution = run_handler_job(handler_name, params)

    failed_for_good(
        execution, "database 'nowhere' is not configured: set BATCHJOBS_DATABASE_NOWHERE_URL"
    )


@pytest.mark.parametrize("alias", ["default", "alias of default"])
def test_batchjobs_own_database_is_refused(run_handler_job, alias, alias_of_default):
    alias = alias_of_default if alias == "alias of default" else alias

    # refused before its engine is looked at: whatever the engine, not batchjobs' own
    execution = run_handler_job("examples.sqlite_crud", {"database": alias})

    failed_for_good(execution, f"database {alias!r} is batchjobs' own database")
    assert TABLE not in connections["default"].introspection.table_names()


# --- sync_sqlite_to_postgres, sync_postgres_to_mysql: both commit or both roll back -------------

SYNCS = [
    on("sqlite", "postgres", name="sync_sqlite_to_postgres"),
    on("postgres", "mysql", name="sync_postgres_to_mysql"),
]


@pytest.mark.parametrize(("source", "target"), SYNCS)
def test_sync_copies_changed_rows_and_marks_them_copied(run_handler_job, source, target):
    # given
    sync = f"examples.sync_{source}_to_{target}"
    customers(source, ann=("Ann", True), bob=("Bob", True), cid=("Cid", False))

    # when
    first = run_handler_job(sync)

    # then
    assert first.status == ExecutionStatus.COMPLETED, first.error
    assert first.result == {"source": source, "target": target, "copied": 3}
    assert state(target) == state(source)
    assert set(synced(source).values()) == {1}
    # the copies are new on the target: changed there, for its own next database
    assert set(synced(target).values()) == {None}

    # when: nothing changed, then one row changed
    assert run_handler_job(sync).result["copied"] == 0
    run_handler_job(
        f"examples.{source}_crud", {"upsert": [{"email": "bob@example.com", "name": "Robert"}]}
    )
    third = run_handler_job(sync)

    # then: only that row is copied, with its version
    assert third.result["copied"] == 1
    assert state(target)["bob@example.com"] == ("Robert", True, 2)
    assert state(target) == state(source)


@pytest.mark.parametrize(("source", "target"), SYNCS)
@pytest.mark.parametrize(
    ("failing", "operation"),
    [
        ("target", "INSERT"),  # the copy of the third row
        ("source", "UPDATE"),  # the second write: marking the third row copied
    ],
)
def test_sync_failure_rolls_back_both_databases(
    run_handler_job, source, target, failing, operation
):
    # given: a synced customer, an edit of it, and three new ones
    sync = f"examples.sync_{source}_to_{target}"
    customers(source, ann=("Ann", True))
    run_handler_job(sync)
    run_handler_job(
        f"examples.{source}_crud",
        {
            "upsert": [
                {"email": "ann@example.com", "name": "Anne"},
                {"email": "bob@example.com", "name": "Bob"},
                {"email": "cid@example.com", "name": "Cid"},
                {"email": "dan@example.com", "name": "Dan"},
            ]
        },
    )
    before = {alias: (state(alias), synced(alias)) for alias in (source, target)}
    # Ann and Bob are copied and marked before Cid's write fails
    refuse({"source": source, "target": target}[failing], "cid@example.com", operation)

    # when
    execution = run_handler_job(sync, max_attempts=1)

    # then: neither database changed
    assert execution.status == ExecutionStatus.FAILED
    assert "customer refused" in execution.error
    assert {alias: (state(alias), synced(alias)) for alias in (source, target)} == before
    assert before[target][0] == {"ann@example.com": ("Ann", True, 1)}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"target": "sqlite"}, "database 'sqlite' is sqlite, not postgresql"),
        ({"source": "nowhere"}, "set BATCHJOBS_DATABASE_NOWHERE_URL"),
    ],
)
def test_sync_checks_the_databases_its_job_names(run_handler_job, params, message):
    execution = run_handler_job("examples.sync_sqlite_to_postgres", params)

    failed_for_good(execution, message)


# --- multi_db_report: three databases, in transactions that refuse writes ----------------------


@needs("sqlite", "postgres", "mysql")
def test_multi_db_report_across_three_databases(run_handler_job):
    # given
    customers("sqlite", ann=("Ann", True), bob=("Bob", False))
    customers("postgres", ann=("Ann", True))
    customers("mysql", cid=("Cid", True))

    # when: its default databases
    execution = run_handler_job("examples.multi_db_report")

    # then
    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    assert execution.result == {
        "databases": {
            "sqlite": {"customers": 2, "active": 1, "unsynced": 2},
            "postgres": {"customers": 1, "active": 1, "unsynced": 1},
            "mysql": {"customers": 1, "active": 1, "unsynced": 1},
        },
        "missing": {
            "sqlite": ["cid@example.com"],
            "postgres": ["bob@example.com", "cid@example.com"],
            "mysql": ["ann@example.com", "bob@example.com"],
        },
    }


@pytest.mark.parametrize("alias", ENGINES)
def test_the_report_transaction_refuses_a_write_on_each_engine(alias):
    # given
    customers(alias, ann=("Ann", True))

    # when: a write inside the transaction the report reads in
    with pytest.raises(DatabaseError) as refused:
        with read_only_transaction(alias):
            TutorialCustomer.objects.using(alias).filter(email="ann@example.com").delete()

    # then: the database itself refused it; the connection writes again afterwards
    assert {
        "sqlite": "readonly database",
        "postgresql": "read-only transaction",
        "mysql": "READ ONLY transaction",
    }[connections[alias].vendor] in str(refused.value)
    assert state(alias) == {"ann@example.com": ("Ann", True, 1)}
    TutorialCustomer.objects.using(alias).filter(email="ann@example.com").delete()
    assert state(alias) == {}


# --- service_layer and do_work_pattern ---------------------------------------------------------


@pytest.mark.parametrize("alias", ENGINES)
def test_service_layer_deactivates_through_the_service(run_handler_job, alias):
    # given
    customers(alias, ann=("Ann", True), bob=("Bob", True), cid=("Cid", False))

    # when
    execution = run_handler_job(
        "examples.service_layer",
        {"database": alias, "deactivate": ["ann@example.com", "cid@example.com"]},
    )

    # then: the active one deactivated, its version raised for the syncs
    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    assert execution.result == {"database": alias, "deactivated": 1}
    assert state(alias) == {
        "ann@example.com": ("Ann", False, 2),
        "bob@example.com": ("Bob", True, 1),
        "cid@example.com": ("Cid", False, 1),
    }


@pytest.mark.parametrize("alias", ENGINES)
def test_service_layer_changes_nothing_when_one_customer_is_missing(run_handler_job, alias):
    customers(alias, ann=("Ann", True))

    execution = run_handler_job(
        "examples.service_layer",
        {"database": alias, "deactivate": ["ann@example.com", "zed@example.com"]},
    )

    failed_for_good(execution, "no customer with the e-mail zed@example.com; nothing was changed")
    assert state(alias) == {"ann@example.com": ("Ann", True, 1)}


@pytest.mark.parametrize("alias", ENGINES)
def test_do_work_pattern_returns_what_do_work_returns(run_handler_job, alias):
    # given
    customers(alias, ann=("Ann", True), bob=("Bob", False))
    expected = {"database": alias, "customers": 2, "active": 1, "unsynced": 2}

    # when / then: the plain function, and the same through a job
    assert do_work({"database": alias}) == expected
    execution = run_handler_job("examples.do_work_pattern", {"database": alias})
    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    assert execution.result == expected


def test_do_work_pattern_defaults_to_the_sqlite_database(run_handler_job):
    execution = run_handler_job("examples.do_work_pattern")

    assert execution.result == {"database": "sqlite", "customers": 0, "active": 0, "unsynced": 0}


# --- concurrent_queries: three databases at once ----------------------------------------------


@needs("sqlite", "postgres", "mysql")
def test_concurrent_queries_count_the_three_databases(run_handler_job):
    # given
    customers("sqlite", ann=("Ann", True))
    customers("postgres", ann=("Ann", True), bob=("Bob", True))
    customers("mysql", ann=("Ann", True), bob=("Bob", True), cid=("Cid", True))

    # when: without queries, the tutorial's three databases
    execution = run_handler_job("examples.concurrent_queries")

    # then
    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    assert [(r["database"], r["rows"]) for r in execution.result["results"]] == [
        ("sqlite", [[1]]),
        ("postgres", [[2]]),
        ("mysql", [[3]]),
    ]


@needs("postgres", "mysql")
def test_concurrent_queries_run_on_the_servers_at_once(handler_context, settings):
    # given: a half-second query on each server, each of the two twice; one after the other
    # they would take 2 s
    settings.BATCHJOBS_SQL_DATABASES = ["postgres", "mysql"]
    queries = [
        {"database": "postgres", "sql": "SELECT pg_sleep(0.5)"},
        {"database": "mysql", "sql": "SELECT SLEEP(0.5)"},
    ] * 2

    # when
    started = time.monotonic()
    result = concurrent_queries(handler_context(), queries=queries, max_workers=4)

    # then
    assert all(r["seconds"] >= 0.5 for r in result["results"])
    assert time.monotonic() - started < 1.5


# --- the built-in sql handler on a MySQL alias -------------------------------------------------


@needs("mysql")
def test_the_sql_handler_runs_on_a_mysql_alias(run_handler_job, settings):
    # given: the operator opened the alias to SQL jobs
    settings.BATCHJOBS_SQL_DATABASES = ["mysql"]
    customers("mysql", ann=("Ann", True), bob=("Bob", False))

    # when
    execution = run_handler_job(
        "sql",
        {"database": "mysql", "statement": f"SELECT name FROM {TABLE} WHERE active ORDER BY 1"},
    )

    # then
    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    assert execution.result["rows"] == [["Ann"]]
