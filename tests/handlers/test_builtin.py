import re
import time
from datetime import timedelta

import pytest
from django.db import IntegrityError, connections
from django.test.utils import CaptureQueriesContext

from batchjobs.errors import InvalidInput
from batchjobs.execution.retention import purge_logs
from batchjobs.handlers.builtin import SQL_RESULT_ROW_LIMIT, fail, noop, sleep, sql
from batchjobs.handlers.registry import NonRetryableError
from batchjobs.models import (
    AttemptStatus,
    BatchAttempt,
    BatchLog,
    ExecutionStatus,
    StepExecution,
    Trigger,
)
from batchjobs.models.clock import database_now
from batchjobs.services.executions import execution_start
from batchjobs.services.jobs import job_create
from batchjobs_examples.models import WarehouseCustomer

BOTH = ["default", "warehouse"]
# Runs inside the test's transaction, rolled back afterwards: the handler's own transactions
# become savepoints. Fine where no commit or rollback of the handler's is being checked.
in_test_transaction = pytest.mark.django_db(databases=BOTH)
# Real transactions, flushed afterwards: what the handler commits or rolls back is what any
# other connection sees.
committing = pytest.mark.django_db(transaction=True, databases=BOTH)


def attempt_rows(execution: BatchLog) -> list[tuple[int, str, bool | None]]:
    return list(
        BatchAttempt.objects.filter(execution=execution)
        .order_by("number")
        .values_list("number", "status", "retryable")
    )


def warehouse_customers(*names: str) -> None:
    for name in names:
        WarehouseCustomer.objects.create(
            email=f"{name.lower()}@example.com", name=name, source_updated_at=database_now()
        )


# --- noop -------------------------------------------------------------------------------------


def test_noop_succeeds_and_does_nothing(handler_context):
    assert noop(handler_context()) == {"ok": True}


@in_test_transaction
def test_noop_job_completes_in_one_attempt(run_handler_job):
    execution = run_handler_job("noop")

    assert execution.status == ExecutionStatus.COMPLETED
    assert execution.result == {"ok": True}
    assert execution.error == ""
    assert attempt_rows(execution) == [(1, AttemptStatus.SUCCEEDED, None)]


@pytest.mark.django_db
def test_noop_takes_no_params():
    with pytest.raises(InvalidInput) as refused:
        job_create(name="noisy", kind="handler", handler_name="noop", params={"x": 1})
    assert refused.value.field_errors == {
        "params": ["Additional properties are not allowed ('x' was unexpected)"]
    }


# --- sleep ------------------------------------------------------------------------------------


def test_sleep_reports_progress_every_second(handler_context):
    # given
    ctx = handler_context()

    # when
    started = time.monotonic()
    result = sleep(ctx, seconds=2.2)
    elapsed = time.monotonic() - started

    # then
    assert result == {"slept_seconds": 2.2}
    assert 2.2 <= elapsed < 3.0
    done = [d for d, _ in ctx.progress_log]
    assert {total for _, total in ctx.progress_log} == {2}
    assert done[0] == 0 and done == sorted(done) and {0, 1, 2} <= set(done)
    assert len(ctx.progress_log) <= 4  # once a second, not a busy loop


def test_sleep_zero_returns_at_once(handler_context):
    started = time.monotonic()
    assert sleep(handler_context(), seconds=0) == {"slept_seconds": 0}
    assert time.monotonic() - started < 0.1


@in_test_transaction
def test_sleep_job_completes_with_what_it_slept(run_handler_job):
    execution = run_handler_job("sleep", {"seconds": 0.3})

    assert execution.status == ExecutionStatus.COMPLETED
    assert execution.result == {"slept_seconds": 0.3}
    assert (execution.finished_at - execution.started_at).total_seconds() >= 0.3


@committing  # the runner closes the connections after a timeout
def test_sleep_longer_than_the_job_timeout_is_cut_off_at_the_timeout(run_handler_job):
    # when
    started = time.monotonic()
    execution = run_handler_job("sleep", {"seconds": 30}, timeout_seconds=0.5, max_attempts=1)

    # then
    assert time.monotonic() - started < 3
    assert execution.status == ExecutionStatus.FAILED
    assert attempt_rows(execution) == [(1, AttemptStatus.TIMED_OUT, True)]
    assert "timed out after 0.5s" in execution.error


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "'seconds' is a required property"),
        ({"seconds": -1}, "seconds: -1 is less than the minimum of 0"),
        ({"seconds": 86401}, "seconds: 86401 is greater than the maximum of 86400"),
        ({"seconds": "5"}, "seconds: '5' is not of type 'number'"),
        ({"seconds": 1, "minutes": 1}, "('minutes' was unexpected)"),
    ],
)
def test_sleep_params_are_checked_against_its_schema(params, message):
    with pytest.raises(InvalidInput) as refused:
        job_create(name="nap", kind="handler", handler_name="sleep", params=params)

    (error,) = refused.value.field_errors["params"]
    assert message in error


# --- fail -------------------------------------------------------------------------------------


def test_fail_raises_a_retryable_error_by_default(handler_context):
    with pytest.raises(RuntimeError, match="^failed on purpose$") as raised:
        fail(handler_context())
    assert not isinstance(raised.value, NonRetryableError)


def test_fail_raises_a_non_retryable_error_on_request(handler_context):
    with pytest.raises(NonRetryableError, match="^bad config$"):
        fail(handler_context(), message="bad config", retryable=False)


def test_fail_succeeds_from_the_given_attempt_on(handler_context):
    with pytest.raises(RuntimeError):
        fail(handler_context(attempt=1), succeed_on_attempt=2)
    assert fail(handler_context(attempt=2), succeed_on_attempt=2) == {"succeeded_on_attempt": 2}
    assert fail(handler_context(attempt=3), succeed_on_attempt=2) == {"succeeded_on_attempt": 3}


@in_test_transaction
def test_retryable_failure_is_retried_up_to_max_attempts(run_handler_job):
    execution = run_handler_job("fail", {"message": "still broken"}, max_attempts=3)

    assert execution.status == ExecutionStatus.FAILED
    assert execution.attempts == 3
    assert attempt_rows(execution) == [(n, AttemptStatus.FAILED, True) for n in (1, 2, 3)]
    assert "RuntimeError: still broken" in execution.error
    assert execution.result is None


@in_test_transaction
def test_non_retryable_failure_ends_after_one_attempt(run_handler_job):
    execution = run_handler_job("fail", {"message": "hopeless", "retryable": False}, max_attempts=3)

    assert execution.status == ExecutionStatus.FAILED
    assert execution.attempts == 1
    assert attempt_rows(execution) == [(1, AttemptStatus.FAILED, False)]
    assert "NonRetryableError: hopeless" in execution.error


@in_test_transaction
def test_succeed_on_attempt_completes_after_the_failed_ones(run_handler_job):
    execution = run_handler_job("fail", {"succeed_on_attempt": 3}, max_attempts=5)

    assert execution.status == ExecutionStatus.COMPLETED
    assert execution.result == {"succeeded_on_attempt": 3}
    assert execution.error == ""
    assert attempt_rows(execution) == [
        (1, AttemptStatus.FAILED, True),
        (2, AttemptStatus.FAILED, True),
        (3, AttemptStatus.SUCCEEDED, None),
    ]


@in_test_transaction
def test_succeed_on_attempt_beyond_max_attempts_fails(run_handler_job):
    execution = run_handler_job("fail", {"succeed_on_attempt": 3}, max_attempts=2)

    assert execution.status == ExecutionStatus.FAILED
    assert execution.attempts == 2


@pytest.mark.django_db
def test_fail_refuses_attempt_zero():
    with pytest.raises(InvalidInput) as refused:
        job_create(
            name="never", kind="handler", handler_name="fail", params={"succeed_on_attempt": 0}
        )
    assert refused.value.field_errors == {
        "params": ["succeed_on_attempt: 0 is less than the minimum of 1"]
    }


# --- sql --------------------------------------------------------------------------------------
# Run against the warehouse: batchjobs' own database is never open to SQL jobs.

WAREHOUSE_TABLE = "batchjobs_warehousecustomer"


@pytest.mark.django_db(databases=BOTH)
def test_sql_query_against_the_warehouse_database(handler_context):
    # given
    warehouse_customers("Wes", "Wyn", "Wim")

    # when
    result = sql(
        handler_context(),
        database="warehouse",
        statement=f"SELECT name, active FROM {WAREHOUSE_TABLE} WHERE name <> %s ORDER BY name",
        params=["Wyn"],
    )

    # then
    assert result["columns"] == ["name", "active"]
    assert [[name, bool(active)] for name, active in result["rows"]] == [
        ["Wes", True],
        ["Wim", True],
    ]


def test_sql_is_open_to_the_warehouse_only_by_default():
    from django.conf import settings as django_settings

    assert "default" not in django_settings.BATCHJOBS_SQL_DATABASES
    assert django_settings.BATCHJOBS_SQL_DATABASES == ["warehouse"]


def test_sql_refuses_batchjobs_own_database_by_default(handler_context):
    with pytest.raises(
        NonRetryableError, match=r"database 'default' is not allowed; allowed: \['warehouse'\]"
    ):
        sql(handler_context(), database="default", statement="SELECT * FROM auth_user")


@pytest.mark.django_db
@pytest.mark.parametrize("alias", ["default", "alias of default"])
def test_sql_refuses_batchjobs_own_database_even_when_listed(
    alias, alias_of_default, run_handler_job, settings
):
    # given an operator who lists it anyway, under its own name or another
    alias = alias_of_default if alias == "alias of default" else alias
    settings.BATCHJOBS_SQL_DATABASES = ["warehouse", alias]

    # when
    execution = run_handler_job(
        "sql", {"database": alias, "statement": "DELETE FROM auth_user"}, max_attempts=3
    )

    # then: refused for good, before any statement
    assert execution.status == ExecutionStatus.FAILED
    assert attempt_rows(execution) == [(1, AttemptStatus.FAILED, False)]
    assert f"database {alias!r} is batchjobs' own database" in execution.error


@pytest.mark.django_db
def test_sql_job_names_its_database():
    with pytest.raises(InvalidInput) as refused:
        job_create(name="q", kind="handler", handler_name="sql", params={"statement": "SELECT 1"})
    assert refused.value.field_errors == {"params": ["'database' is a required property"]}


@pytest.mark.django_db(databases=BOTH)
def test_sql_returns_at_most_the_row_limit(handler_context):
    result = sql(
        handler_context(),
        database="warehouse",
        statement="WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %s) "
        "SELECT i FROM n",
        params=[SQL_RESULT_ROW_LIMIT + 50],
    )

    assert len(result["rows"]) == SQL_RESULT_ROW_LIMIT
    assert result["rows"][0] == [1]


@committing
def test_sql_job_writes_are_committed_on_its_database(run_handler_job):
    # given
    warehouse_customers("Ann", "Bob", "Cid")

    # when
    execution = run_handler_job(
        "sql",
        {
            "database": "warehouse",
            "statement": f"UPDATE {WAREHOUSE_TABLE} SET active = %s WHERE name IN (%s, %s)",
            "params": [False, "Ann", "Cid"],
        },
    )

    # then
    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    assert execution.result == {"rowcount": 2}
    inactive = WarehouseCustomer.objects.filter(active=False).values_list("name", flat=True)
    assert set(inactive) == {"Ann", "Cid"}


@in_test_transaction
def test_sql_job_result_keeps_dates_and_decimals(run_handler_job):
    # given
    warehouse_customers("Ann")

    # when: a timestamp column and a decimal expression, which plain JSON cannot hold
    execution = run_handler_job(
        "sql",
        {
            "database": "warehouse",
            "statement": "SELECT source_updated_at, CAST(%s AS DECIMAL(10, 2)) AS price "
            f"FROM {WAREHOUSE_TABLE}",
            "params": ["12.50"],
        },
    )

    # then
    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    assert execution.result["columns"] == ["source_updated_at", "price"]
    ((updated_at, price),) = execution.result["rows"]
    assert str(WarehouseCustomer.objects.get().source_updated_at.date()) in str(updated_at)
    assert float(price) == 12.5


def test_sql_refuses_a_database_that_is_not_configured_for_it(handler_context):
    with pytest.raises(NonRetryableError, match="database 'replica' is not allowed"):
        sql(handler_context(), database="replica", statement="SELECT 1")


@in_test_transaction
def test_sql_job_against_a_disallowed_alias_fails_at_once_without_running(
    run_handler_job, settings
):
    # given: the warehouse exists but the operator did not open it to SQL jobs
    settings.BATCHJOBS_SQL_DATABASES = []
    warehouse_customers("Wes")

    # when
    execution = run_handler_job(
        "sql",
        {"database": "warehouse", "statement": f"DELETE FROM {WAREHOUSE_TABLE}"},
        max_attempts=3,
    )

    # then
    assert execution.status == ExecutionStatus.FAILED
    assert attempt_rows(execution) == [(1, AttemptStatus.FAILED, False)]
    assert "database 'warehouse' is not allowed; allowed: []" in execution.error
    assert WarehouseCustomer.objects.count() == 1


@pytest.mark.django_db(databases=BOTH)
def test_sql_error_rolls_back_and_leaves_the_connection_usable(handler_context):
    # given: the test's own transaction encloses the handler's, as a caller's would
    warehouse_customers("Ann", "Bob", "Cid")

    # when: the first row is updated, the second breaks the unique e-mail
    with pytest.raises(IntegrityError):
        sql(
            handler_context(),
            database="warehouse",
            statement=f"UPDATE {WAREHOUSE_TABLE} SET email = %s",
            params=["same@example.com"],
        )

    # then: nothing changed, and the enclosing transaction was not left aborted
    assert sorted(WarehouseCustomer.objects.values_list("email", flat=True)) == [
        "ann@example.com",
        "bob@example.com",
        "cid@example.com",
    ]
    count = sql(
        handler_context(), database="warehouse", statement=f"SELECT COUNT(*) FROM {WAREHOUSE_TABLE}"
    )
    assert count["rows"] == [[3]]


@committing
def test_sql_job_error_changes_nothing_and_is_retried(run_handler_job):
    # given
    warehouse_customers("Ann", "Bob")

    # when
    execution = run_handler_job(
        "sql",
        {
            "database": "warehouse",
            "statement": f"UPDATE {WAREHOUSE_TABLE} SET email = %s",
            "params": ["same@example.com"],
        },
        max_attempts=2,
    )

    # then
    assert execution.status == ExecutionStatus.FAILED
    assert attempt_rows(execution) == [
        (1, AttemptStatus.FAILED, True),
        (2, AttemptStatus.FAILED, True),
    ]
    assert "IntegrityError" in execution.error
    assert sorted(WarehouseCustomer.objects.values_list("email", flat=True)) == [
        "ann@example.com",
        "bob@example.com",
    ]


@pytest.mark.django_db(databases=BOTH)
def test_sql_statement_without_params_may_contain_a_literal_percent_sign(handler_context):
    # given
    warehouse_customers("Tmp-1", "Tmp-2", "Keep")

    # when: no params given, so the % of LIKE is SQL, not a placeholder
    result = sql(
        handler_context(),
        database="warehouse",
        statement=f"SELECT name FROM {WAREHOUSE_TABLE} WHERE email LIKE 'tmp-%' ORDER BY name",
    )

    # then
    assert result["rows"] == [["Tmp-1"], ["Tmp-2"]]


# --- purge_logs -------------------------------------------------------------------------------

OLD, RECENT = timedelta(days=11), timedelta(days=9)


def execution_aged(job, *, status: ExecutionStatus, age: timedelta) -> BatchLog:
    """An execution that reached `status` and was created `age` ago."""
    execution = execution_start(job=job, trigger=Trigger.API)
    BatchLog.objects.filter(pk=execution.pk).update(
        status=status, created_at=database_now() - age, attempts=1 if status != "QUEUED" else 0
    )
    return execution


@pytest.fixture
def job():
    return job_create(name="history", kind="handler", handler_name="noop")


@pytest.mark.django_db
def test_purge_deletes_only_finished_executions_older_than_the_age(handler_context, job):
    # given
    finished = [
        ExecutionStatus.COMPLETED,
        ExecutionStatus.FAILED,
        ExecutionStatus.STOPPED,
        ExecutionStatus.ABANDONED,
        ExecutionStatus.SKIPPED,
    ]
    old_finished = {execution_aged(job, status=s, age=OLD).pk for s in finished}
    kept = {
        execution_aged(job, status=ExecutionStatus.QUEUED, age=OLD).pk,
        execution_aged(job, status=ExecutionStatus.STARTED, age=OLD).pk,
        execution_aged(job, status=ExecutionStatus.STOPPING, age=OLD).pk,
        execution_aged(job, status=ExecutionStatus.COMPLETED, age=RECENT).pk,
        execution_aged(job, status=ExecutionStatus.FAILED, age=RECENT).pk,
    }

    # when
    result = purge_logs(handler_context(), older_than_days=10)

    # then
    assert result == {"deleted": len(old_finished)}
    assert set(BatchLog.objects.values_list("pk", flat=True)) == kept


@pytest.mark.django_db
def test_purge_takes_its_attempts_and_steps_along(handler_context, job):
    # given
    old = execution_aged(job, status=ExecutionStatus.COMPLETED, age=OLD)
    recent = execution_aged(job, status=ExecutionStatus.COMPLETED, age=RECENT)
    for execution in (old, recent):
        BatchAttempt.objects.create(
            execution=execution, number=1, status=AttemptStatus.SUCCEEDED, started_at=database_now()
        )
        StepExecution.objects.create(
            execution=execution, step_name="load", status=ExecutionStatus.COMPLETED
        )

    # when
    purge_logs(handler_context(), older_than_days=10)

    # then
    assert list(BatchAttempt.objects.values_list("execution", flat=True)) == [recent.pk]
    assert list(StepExecution.objects.values_list("execution", flat=True)) == [recent.pk]


@pytest.mark.django_db
def test_purge_deletes_in_batches_of_the_given_size(handler_context, job):
    # given
    for _ in range(5):
        execution_aged(job, status=ExecutionStatus.COMPLETED, age=OLD)

    # when
    with CaptureQueriesContext(connections["default"]) as queries:
        result = purge_logs(handler_context(), older_than_days=10, batch_size=2)

    # then: 2 + 2 + 1
    deletes = [q["sql"] for q in queries if re.match(r'DELETE FROM "batchjobs_batchlog"', q["sql"])]
    assert result == {"deleted": 5}
    assert len(deletes) == 3
    assert not BatchLog.objects.exists()


@pytest.mark.django_db
def test_purge_with_a_fractional_age(handler_context, job):
    # given
    old = execution_aged(job, status=ExecutionStatus.COMPLETED, age=timedelta(hours=13))
    young = execution_aged(job, status=ExecutionStatus.COMPLETED, age=timedelta(hours=11))

    # when
    result = purge_logs(handler_context(), older_than_days=0.5)

    # then
    assert result == {"deleted": 1}
    assert not BatchLog.objects.filter(pk=old.pk).exists()
    assert BatchLog.objects.filter(pk=young.pk).exists()


@in_test_transaction
def test_purge_job_keeps_its_own_running_execution(run_handler_job, job):
    # given
    execution_aged(job, status=ExecutionStatus.COMPLETED, age=OLD)
    execution_aged(job, status=ExecutionStatus.FAILED, age=OLD)
    kept = execution_aged(job, status=ExecutionStatus.COMPLETED, age=RECENT)

    # when
    execution = run_handler_job("purge_logs", {"older_than_days": 10, "batch_size": 1})

    # then
    assert execution.status == ExecutionStatus.COMPLETED
    assert execution.result == {"deleted": 2}
    assert set(BatchLog.objects.values_list("pk", flat=True)) == {kept.pk, execution.pk}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "'older_than_days' is a required property"),
        ({"older_than_days": 0}, "older_than_days: 0 is less than or equal to the minimum of 0"),
        ({"older_than_days": 1, "batch_size": 0}, "batch_size: 0 is less than the minimum of 1"),
    ],
)
def test_purge_params_are_checked_against_its_schema(params, message):
    with pytest.raises(InvalidInput) as refused:
        job_create(name="purge", kind="handler", handler_name="purge_logs", params=params)
    assert refused.value.field_errors == {"params": [message]}
