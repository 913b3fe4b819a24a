import threading
import time

import pytest
from django.db import DatabaseError, connections

from batchjobs.errors import InvalidInput
from batchjobs.handlers.registry import NonRetryableError
from batchjobs.models import AttemptStatus, ExecutionStatus
from batchjobs.services.jobs import job_create
from batchjobs_examples.handlers import (
    concurrent_queries,
    customer_report,
    read_only_transaction,
    sync_customers_to_warehouse,
)
from batchjobs_examples.models import ExampleCustomer, WarehouseCustomer

# Autouse: the heartbeat threads' sessions are ended so that the test databases can be dropped.
from tests.handlers.conftest import no_session_left_on_the_test_databases  # noqa: F401
from tests.support.engines import postgresql_only

BOTH = ["default", "warehouse"]
# Real transactions, flushed afterwards: what a handler commits or rolls back on either database
# is what any other connection (another thread's, the next run's) sees.
committing = pytest.mark.django_db(transaction=True, databases=BOTH)
# Inside the test's transaction, rolled back afterwards: for logic, not for commit or rollback.
in_test_transaction = pytest.mark.django_db(databases=BOTH)


overlapping = postgresql_only(
    "overlap needs a server that runs queries in parallel; SQLite runs one"
)

UPSERT = "examples.customers_upsert"
SYNC = "examples.sync_customers_to_warehouse"
REPORT = "examples.customer_report"
CONCURRENT = "examples.concurrent_queries"


def customer(name: str, *, active: bool = True) -> ExampleCustomer:
    return ExampleCustomer.objects.create(
        email=f"{name.lower()}@example.com", name=name, active=active
    )


def source_state() -> dict[str, tuple[str, bool]]:
    return {c.email: (c.name, c.active) for c in ExampleCustomer.objects.all()}


def warehouse_state() -> dict[str, tuple[str, bool]]:
    return {c.email: (c.name, c.active) for c in WarehouseCustomer.objects.all()}


def unsynced() -> set[str]:
    return {
        c.email
        for c in ExampleCustomer.objects.all()
        if c.synced_at is None or c.synced_at < c.updated_at
    }


# --- examples.customers_upsert: one transaction on one database ----------------------------


@pytest.fixture
def refused_email():
    """A database trigger that refuses to insert one e-mail, as a constraint would: the failure
    comes from the database, in the middle of the handler's transaction."""
    email = "refused@example.com"
    connection = connections["default"]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION refuse_customer() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN IF NEW.email = '{email}' THEN RAISE EXCEPTION 'customer refused'; "
                "END IF; RETURN NEW; END $$"
            )
            cursor.execute(
                "CREATE TRIGGER refuse_customer BEFORE INSERT ON batchjobs_examplecustomer "
                "FOR EACH ROW EXECUTE FUNCTION refuse_customer()"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER refuse_customer BEFORE INSERT ON batchjobs_examplecustomer "
                f"WHEN NEW.email = '{email}' BEGIN SELECT RAISE(ABORT, 'customer refused'); END"
            )
    yield email
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("DROP TRIGGER refuse_customer ON batchjobs_examplecustomer")
            cursor.execute("DROP FUNCTION refuse_customer()")
        else:
            cursor.execute("DROP TRIGGER refuse_customer")


@committing
def test_upsert_creates_updates_and_deletes(run_handler_job):
    # given
    customer("Keep")
    customer("Renamed")
    customer("Gone")

    # when
    execution = run_handler_job(
        UPSERT,
        {
            "upsert": [
                {"email": "new@example.com", "name": "New"},
                {"email": "renamed@example.com", "name": "Renamed Twice", "active": False},
            ],
            "delete": ["gone@example.com", "never-existed@example.com"],
        },
    )

    # then
    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    assert execution.result == {"created": 1, "updated": 1, "deleted": 1}
    assert source_state() == {
        "keep@example.com": ("Keep", True),
        "new@example.com": ("New", True),
        "renamed@example.com": ("Renamed Twice", False),
    }


@in_test_transaction
def test_upsert_run_again_updates_instead_of_duplicating(run_handler_job):
    params = {"upsert": [{"email": "ann@example.com", "name": "Ann"}]}

    first = run_handler_job(UPSERT, params)
    second = run_handler_job(UPSERT, params)

    assert first.result == {"created": 1, "updated": 0, "deleted": 0}
    assert second.result == {"created": 0, "updated": 1, "deleted": 0}
    assert ExampleCustomer.objects.count() == 1


@committing
def test_upsert_rolls_back_entirely_when_one_row_fails(run_handler_job, refused_email):
    # given
    customer("Renamed")
    customer("Gone")
    before = source_state()

    # when: rows before and after the refused one, an update and a delete
    execution = run_handler_job(
        UPSERT,
        {
            "upsert": [
                {"email": "first@example.com", "name": "First"},
                {"email": "renamed@example.com", "name": "Renamed Twice"},
                {"email": refused_email, "name": "Refused"},
                {"email": "last@example.com", "name": "Last"},
            ],
            "delete": ["gone@example.com"],
        },
        max_attempts=1,
    )

    # then
    assert execution.status == ExecutionStatus.FAILED
    assert "customer refused" in execution.error
    assert execution.result is None
    assert source_state() == before


@pytest.mark.django_db
def test_upsert_schema_refuses_an_email_longer_than_the_column():
    """ExampleCustomer.email holds 254 characters; a longer one must be refused at save, naming
    the field, not fail at run time (PostgreSQL) or be stored anyway (SQLite)."""
    too_long = "a" * 250 + "@example.com"

    with pytest.raises(InvalidInput) as refused:
        job_create(
            name="long-email",
            kind="handler",
            handler_name=UPSERT,
            params={"upsert": [{"email": too_long, "name": "Long"}]},
        )

    (message,) = refused.value.field_errors["params"]
    assert message.startswith("upsert.0.email: ")


@pytest.mark.django_db
def test_upsert_schema_refuses_an_email_with_a_trailing_newline():
    """The pattern allows no whitespace, but jsonschema matches it with Python's re, whose $ also
    matches before a final newline: "ann@example.com\\n" would be stored as a second Ann."""
    with pytest.raises(InvalidInput) as refused:
        job_create(
            name="newline-email",
            kind="handler",
            handler_name=UPSERT,
            params={"upsert": [{"email": "ann@example.com\n", "name": "Ann"}]},
        )

    assert all(m.startswith("upsert.0.email: ") for m in refused.value.field_errors["params"])


# --- examples.sync_customers_to_warehouse: two databases, both commit or both roll back -------


@committing
def test_sync_copies_changed_rows_and_marks_them_synced(run_handler_job):
    # given
    for name in ("Ann", "Bob"):
        customer(name)
    customer("Cid", active=False)

    # when
    execution = run_handler_job(SYNC)

    # then
    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    assert execution.result == {"copied": 3}
    assert warehouse_state() == source_state()
    for source in ExampleCustomer.objects.all():
        copy = WarehouseCustomer.objects.get(email=source.email)
        assert copy.source_updated_at == source.updated_at
        assert source.synced_at >= source.updated_at
    assert unsynced() == set()


@committing
def test_sync_again_copies_nothing_then_an_edited_row_again(run_handler_job):
    # given
    for name in ("Ann", "Bob", "Cid"):
        customer(name)
    assert run_handler_job(SYNC).result == {"copied": 3}
    synced_at = dict(ExampleCustomer.objects.values_list("email", "synced_at"))

    # when: nothing changed
    second = run_handler_job(SYNC)

    # then
    assert second.result == {"copied": 0}
    assert dict(ExampleCustomer.objects.values_list("email", "synced_at")) == synced_at

    # when: one row is edited
    bob = ExampleCustomer.objects.get(name="Bob")
    bob.name, bob.active = "Robert", False
    bob.save()
    third = run_handler_job(SYNC)

    # then: only that row is copied
    assert third.result == {"copied": 1}
    assert warehouse_state()["bob@example.com"] == ("Robert", False)
    assert warehouse_state() == source_state()
    assert unsynced() == set()


@in_test_transaction
def test_sync_copies_at_most_batch_size_rows_per_run(run_handler_job):
    for name in ("Ann", "Bob", "Cid", "Dan", "Eve"):
        customer(name)

    copied = [run_handler_job(SYNC, {"batch_size": 2}).result["copied"] for _ in range(4)]

    assert copied == [2, 2, 1, 0]
    assert warehouse_state() == source_state()


@committing
def test_sync_failure_rolls_back_both_databases(run_handler_job):
    # given
    for name in ("Ann", "Bob", "Cid", "Dan"):
        customer(name)

    # when: it fails after copying two rows
    execution = run_handler_job(SYNC, {"fail_after_rows": 2}, max_attempts=1)

    # then: no copies in the warehouse AND no row marked synced in the source
    assert execution.status == ExecutionStatus.FAILED
    assert "failing on purpose after 2 rows" in execution.error
    assert WarehouseCustomer.objects.count() == 0
    assert not ExampleCustomer.objects.filter(synced_at__isnull=False).exists()

    # and the next run, without the failure, copies everything
    assert run_handler_job(SYNC).result == {"copied": 4}
    assert warehouse_state() == source_state()


@committing
def test_sync_failure_keeps_the_previous_copies_unchanged(run_handler_job):
    # given: a synced warehouse, then an edit and two new customers
    ann, bob = customer("Ann"), customer("Bob")
    run_handler_job(SYNC)
    before_warehouse = warehouse_state()
    before_synced_at = dict(ExampleCustomer.objects.values_list("email", "synced_at"))
    ann.refresh_from_db()  # save() writes every field: not the stale synced_at
    ann.name = "Anne"
    ann.save()
    customer("Cid")
    customer("Dan")

    # when
    execution = run_handler_job(SYNC, {"fail_after_rows": 2}, max_attempts=1)

    # then
    assert execution.status == ExecutionStatus.FAILED
    assert warehouse_state() == before_warehouse
    assert {
        email: synced_at
        for email, synced_at in ExampleCustomer.objects.values_list("email", "synced_at")
        if email in before_synced_at
    } == before_synced_at
    assert unsynced() == {ann.email, "cid@example.com", "dan@example.com"}
    assert bob.email not in unsynced()


@committing
def test_sync_failure_is_retryable_and_every_attempt_rolls_back(run_handler_job):
    # given: the failure raises a plain exception, so the attempt is retryable
    customer("Ann")

    # when
    execution = run_handler_job(SYNC, {"fail_after_rows": 0}, max_attempts=2)

    # then
    assert execution.status == ExecutionStatus.FAILED
    assert [a.status for a in execution.attempt_rows.order_by("number")] == [
        AttemptStatus.FAILED,
        AttemptStatus.FAILED,
    ]
    assert all(a.retryable for a in execution.attempt_rows.all())
    assert WarehouseCustomer.objects.count() == 0


def wait_until_blocked_on_a_lock() -> None:
    """Return once another session waits for a lock this transaction holds (PostgreSQL), or
    after a moment that is ample for a thread to reach its blocked write (SQLite)."""
    connection = connections["default"]
    if connection.vendor != "postgresql":
        time.sleep(0.5)
        return
    give_up = time.monotonic() + 10
    with connection.cursor() as cursor:
        while time.monotonic() < give_up:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT COUNT(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    pytest.fail("the edit never waited for the sync's lock")


@committing
def test_an_edit_made_while_a_sync_runs_is_copied_by_the_next_sync(handler_context):
    # given: two customers to sync
    customer("Ann")
    customer("Bob")
    errors = []

    def edit_bob() -> None:
        try:
            bob = ExampleCustomer.objects.get(name="Bob")
            bob.name = "Robert"
            # Only what it changed, so as not to overwrite the sync's synced_at; blocks on the
            # row the sync holds until the sync commits.
            bob.save(update_fields=["name", "updated_at"])
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    editor = threading.Thread(target=edit_bob)

    def after_each_row(done, total) -> None:
        if done == 1:  # Ann copied; Bob is locked by the sync and not copied yet
            editor.start()
            wait_until_blocked_on_a_lock()

    ctx = handler_context()
    ctx.report_progress = after_each_row

    # when: Bob is edited while the sync runs
    first = sync_customers_to_warehouse(ctx)
    editor.join(30)

    # then: the first sync copied the version it read; the next one copies the edit
    assert not errors and not editor.is_alive()
    assert first == {"copied": 2}
    assert ExampleCustomer.objects.get(email="bob@example.com").name == "Robert"
    assert customer_report(handler_context())["stale_in_warehouse"] == ["bob@example.com"]
    second = sync_customers_to_warehouse(handler_context())
    assert warehouse_state() == source_state()
    assert second == {"copied": 1}


@in_test_transaction
def test_sync_reports_progress_per_copied_row(handler_context):
    # given
    for name in ("Ann", "Bob", "Cid"):
        customer(name)
    ctx = handler_context()

    # when
    result = sync_customers_to_warehouse(ctx)

    # then
    assert result == {"copied": 3}
    assert ctx.progress_log == [(1, None), (2, None), (3, None)]


# --- examples.customer_report: read-only across both databases -----------------------------


@committing
def test_report_finds_missing_stale_and_gone_rows(run_handler_job):
    # given: three customers copied to the warehouse
    for name in ("Ann", "Bob", "Cid"):
        customer(name)
    assert run_handler_job(SYNC).result == {"copied": 3}
    # then Bob changes, Cid leaves, Dan and Eve (inactive) arrive
    bob = ExampleCustomer.objects.get(name="Bob")
    bob.name = "Robert"
    bob.save()
    ExampleCustomer.objects.filter(name="Cid").delete()
    customer("Dan")
    customer("Eve", active=False)
    source_before, warehouse_before = source_state(), warehouse_state()

    # when
    execution = run_handler_job(REPORT)

    # then
    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    assert execution.result == {
        "source_customers": 4,
        "source_active": 3,
        "warehouse_customers": 3,
        "missing_in_warehouse": ["dan@example.com", "eve@example.com"],
        "gone_from_source": ["cid@example.com"],
        "stale_in_warehouse": ["bob@example.com"],
    }
    assert (source_state(), warehouse_state()) == (source_before, warehouse_before)


@in_test_transaction
def test_report_after_a_full_sync_finds_nothing_to_do(run_handler_job):
    for name in ("Ann", "Bob"):
        customer(name)
    run_handler_job(SYNC)

    result = run_handler_job(REPORT).result

    assert result["missing_in_warehouse"] == result["stale_in_warehouse"] == []
    assert result["gone_from_source"] == []
    assert result["source_customers"] == result["warehouse_customers"] == 2


@in_test_transaction
def test_report_of_empty_databases(handler_context):
    assert customer_report(handler_context()) == {
        "source_customers": 0,
        "source_active": 0,
        "warehouse_customers": 0,
        "missing_in_warehouse": [],
        "gone_from_source": [],
        "stale_in_warehouse": [],
    }


def write_to(alias: str) -> None:
    if alias == "default":
        customer("Intruder")
    else:
        WarehouseCustomer.objects.create(
            email="intruder@example.com", name="Intruder", source_updated_at="2024-01-01T00:00Z"
        )


def rows_in(alias: str) -> int:
    return (ExampleCustomer if alias == "default" else WarehouseCustomer).objects.count()


@pytest.fixture
def writable_afterwards():
    """SQLite's query_only belongs to the connection, not to a transaction: put it back for the
    tests that come next, whatever this one left behind."""
    yield
    for alias in BOTH:
        connection = connections[alias]
        if connection.vendor == "sqlite" and connection.connection is not None:
            connection.connection.execute("PRAGMA query_only = OFF")


@committing
@pytest.mark.parametrize("alias", BOTH)
def test_the_report_transaction_refuses_a_write(alias, writable_afterwards):
    # when: a write inside the transaction the report reads in
    with pytest.raises(DatabaseError) as refused:
        with read_only_transaction(alias):
            write_to(alias)

    # then: the database itself refused it, nothing was written, and the connection writes
    # again once the report's transaction is over
    vendor = connections[alias].vendor
    assert {"postgresql": "read-only transaction", "sqlite": "readonly database"}[vendor] in str(
        refused.value
    )
    assert rows_in(alias) == 0
    write_to(alias)
    assert rows_in(alias) == 1


@in_test_transaction
@pytest.mark.parametrize("alias", BOTH)
def test_the_report_transaction_nested_in_a_callers_leaves_it_writable(alias, writable_afterwards):
    # given: the caller's transaction (here the test's) encloses the report's
    with pytest.raises(DatabaseError):
        with read_only_transaction(alias):
            write_to(alias)

    # when
    with read_only_transaction(alias):
        assert rows_in(alias) == 0

    # then
    write_to(alias)
    assert rows_in(alias) == 1


# --- examples.concurrent_queries: one connection per thread --------------------------------


@committing
def test_concurrent_queries_return_each_result_in_query_order(handler_context):
    # given: committed rows, since each query runs on its own thread's connection
    for name in ("Ann", "Bob", "Cid"):
        customer(name)
    WarehouseCustomer.objects.create(
        email="ann@example.com", name="Ann", source_updated_at="2024-01-01T00:00Z"
    )

    # when
    result = concurrent_queries(
        handler_context(),
        queries=[
            {"sql": "SELECT COUNT(*) FROM batchjobs_examplecustomer"},
            {"database": "warehouse", "sql": "SELECT name FROM batchjobs_warehousecustomer"},
            {"database": "default", "sql": "SELECT name FROM batchjobs_examplecustomer ORDER BY 1"},
        ],
        max_workers=3,
    )

    # then
    assert [(r["database"], r["rows"]) for r in result["results"]] == [
        ("default", [[3]]),
        ("warehouse", [["Ann"]]),
        ("default", [["Ann"], ["Bob"], ["Cid"]]),
    ]
    assert all(r["seconds"] >= 0 for r in result["results"])


@committing
def test_concurrent_queries_job_completes(run_handler_job):
    customer("Ann")

    execution = run_handler_job(
        CONCURRENT,
        {
            "queries": [
                {"sql": "SELECT email FROM batchjobs_examplecustomer"},
                {
                    "database": "warehouse",
                    "sql": "SELECT COUNT(*) FROM batchjobs_warehousecustomer",
                },
            ]
        },
    )

    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    assert [r["rows"] for r in execution.result["results"]] == [[["ann@example.com"]], [[0]]]


@committing
@pytest.mark.parametrize("alias", BOTH)
def test_concurrent_queries_cannot_write(handler_context, alias):
    # given
    write_to(alias)
    table = "batchjobs_examplecustomer" if alias == "default" else "batchjobs_warehousecustomer"

    # when
    with pytest.raises(DatabaseError):
        concurrent_queries(
            handler_context(),
            queries=[{"database": alias, "sql": f"DELETE FROM {table}"}, {"sql": "SELECT 1"}],
        )

    # then
    assert rows_in(alias) == 1


def test_concurrent_queries_refuse_a_database_not_allowed(handler_context):
    with pytest.raises(NonRetryableError, match="database 'replica' is not allowed"):
        concurrent_queries(
            handler_context(), queries=[{"sql": "SELECT 1"}, {"database": "replica", "sql": "x"}]
        )


def test_concurrent_queries_refuse_the_implicit_default_when_not_allowed(handler_context, settings):
    # given: only the warehouse is open to queries; the query names no database
    settings.BATCHJOBS_SQL_DATABASES = ["warehouse"]

    # then: refused for good, naming the database it would have used
    with pytest.raises(NonRetryableError, match="database 'default' is not allowed"):
        concurrent_queries(handler_context(), queries=[{"sql": "SELECT 1"}])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"queries": []}, "queries: [] should be non-empty"),
        ({"queries": [{"sql": "SELECT 1"}], "max_workers": 0}, "max_workers: 0 is less than"),
        ({"queries": [{"database": "default"}]}, "queries.0: 'sql' is a required property"),
        ({"queries": [{"sql": "SELECT 1"}] * 33}, "queries: [{'sql': 'SELECT 1'}, "),
    ],
)
def test_concurrent_queries_params_are_checked_against_the_schema(params, message):
    with pytest.raises(InvalidInput) as refused:
        job_create(name="parallel", kind="handler", handler_name=CONCURRENT, params=params)
    (error,) = refused.value.field_errors["params"]
    assert error.startswith(message)


@committing
@overlapping
def test_concurrent_queries_overlap_on_postgresql(handler_context):
    # given: four half-second queries; one after the other they would take 2 s
    queries = [{"sql": "SELECT pg_sleep(0.5)"}] * 4

    # when
    started = time.monotonic()
    result = concurrent_queries(handler_context(), queries=queries, max_workers=4)
    elapsed = time.monotonic() - started

    # then
    assert all(r["seconds"] >= 0.5 for r in result["results"])
    assert elapsed < 1.5
    assert result["seconds"] < 1.5


@committing
@overlapping
def test_concurrent_queries_run_at_most_max_workers_at_once(handler_context):
    queries = [{"sql": "SELECT pg_sleep(0.3)"}] * 4

    result = concurrent_queries(handler_context(), queries=queries, max_workers=2)

    # two rounds of two
    assert 0.6 <= result["seconds"] < 1.2


@committing
@postgresql_only("counts server backends in pg_stat_activity")
def test_concurrent_queries_close_their_connections(handler_context):
    default = connections["default"]

    def sessions_since(moment) -> int:
        with default.cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_start >= %s AND pid <> pg_backend_pid()",
                [moment],
            )
            return cursor.fetchone()[0]

    # given
    with default.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp(), pg_backend_pid()")
        started, own_pid = cursor.fetchone()

    # when
    result = concurrent_queries(
        handler_context(), queries=[{"sql": "SELECT pg_backend_pid()"}] * 6, max_workers=3
    )

    # then: the queries ran on sessions of their own, and every one of them ends (a server
    # process ends a moment after its client hangs up)
    assert own_pid not in {r["rows"][0][0] for r in result["results"]}
    give_up = time.monotonic() + 5
    while (left := sessions_since(started)) and time.monotonic() < give_up:
        time.sleep(0.05)
    assert left == 0
