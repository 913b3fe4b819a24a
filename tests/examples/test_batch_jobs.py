"""The worked examples of batchjobs_examples/batch_jobs.py, end to end and in-process, on small
files made here. On PostgreSQL the CSV imports go through COPY, elsewhere through the ORM."""

import pytest
from django.db import connections

from batchjobs.batch import StepContext
from batchjobs.batch.writers import PostgresCopyWriter
from batchjobs.models import ExecutionStatus, StepExecution
from batchjobs.services import operator
from batchjobs_examples import batch_jobs
from batchjobs_examples.models import ExampleCustomer, WarehouseCustomer
from tests.support.factories import batch_start
from tests.support.runs import run_in_process, step_execution

BOTH = ["default", "warehouse"]


def customers_csv(path, count: int, *, bad: dict[int, str] | None = None) -> list[str]:
    """A file of `count` records, record n on line n + 1, record n replaced by bad[n] if given;
    returns the e-mails of the good records."""
    bad = bad or {}
    lines = ["email,name,active"]
    for n in range(1, count + 1):
        lines.append(bad.get(n, f" User{n}@Example.com ,Customer {n},{'yes' if n % 3 else 'no'}"))
    path.write_bytes("\n".join(lines).encode() + b"\n")
    return [f"user{n}@example.com" for n in range(1, count + 1) if n not in bad]


def emails() -> list[str]:
    return sorted(ExampleCustomer.objects.values_list("email", flat=True))


BAD_RECORDS = {
    # record number: line (record n is on line n + 1)
    7: "too,many,fields,here",  # a bad line: wrong field count
    640: "only-one-field",  # a bad line
    1203: "not-an-email,Someone,yes",  # valid CSV, invalid customer
    1500: "user9@example.com,Again,yes",  # a duplicate of record 9
    2222: "user2222@example.com,Maybe,perhaps",  # invalid: active is not a boolean
}


@pytest.mark.django_db
def test_csv_import_skips_and_reports_bad_lines_and_imports_the_rest(tmp_path):
    # given
    path = tmp_path / "customers.csv"
    customers_csv(path, 2500, bad=BAD_RECORDS)
    with path.open("ab") as file:
        file.write(b"user2501@example.com,Caf\xe9,yes\n")  # Latin-1, not UTF-8: line 2502

    # when
    execution = run_in_process(
        operator.job_start(job_name="examples.csv_import", params={"file": str(path)})
    )

    # then
    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    expected = [f"user{n}@example.com" for n in range(1, 2501) if n not in BAD_RECORDS]
    assert emails() == sorted(expected)
    customer = ExampleCustomer.objects.get(email="user3@example.com")
    assert (customer.name, customer.active) == ("Customer 3", False)
    load = step_execution(execution, "import")
    assert (load.read_count, load.write_count) == (2498, 2495)
    assert (load.read_skip_count, load.process_skip_count, load.write_skip_count) == (3, 2, 1)
    report = execution.execution_context["job"]["import"]
    assert [(line["line"], line["reason"]) for line in report["bad_lines"]] == [
        (8, "expected 3 fields, found 4"),
        (641, "expected 3 fields, found 1"),
        (2502, "bytes that are not valid utf-8"),
    ]
    assert report["bad_lines"][0]["text"] == "too,many,fields,here\n"
    assert (report["written"], report["duplicates_skipped"]) == (2495, 1)


@pytest.mark.django_db
def test_csv_import_restarts_from_its_last_chunk_and_imports_each_line_once(tmp_path, monkeypatch):
    # given a run whose skip limit the third bad line passes, in the 3rd chunk
    path = tmp_path / "customers.csv"
    bad = {2100: "x", 2200: "y", 2300: "z"}
    expected = customers_csv(path, 3100, bad=bad)
    monkeypatch.setattr(batch_jobs, "IMPORT_SKIP_LIMIT", 2)
    failed = run_in_process(batch_start("examples.csv_import", {"file": str(path)}))
    assert failed.status == ExecutionStatus.FAILED
    assert "skip limit 2" in step_execution(failed, "import").error
    assert len(emails()) == 2000  # the two chunks committed; the third rolled back

    # when restarted with a larger limit
    monkeypatch.setattr(batch_jobs, "IMPORT_SKIP_LIMIT", 10)
    restarted = run_in_process(operator.execution_restart(execution_id=failed.pk))

    # then it read on from line 2002, and wrote each customer once: no duplicate was
    # attempted (write_skip_count 0), so no committed line was read again
    assert restarted.status == ExecutionStatus.COMPLETED, restarted.error
    load = step_execution(restarted, "import")
    assert (load.read_count, load.read_skip_count, load.write_skip_count) == (1097, 3, 0)
    assert emails() == sorted(expected)
    lines = [line["line"] for line in load.execution_context["bad_lines"]]
    assert lines == [2101, 2201, 2301]


@pytest.mark.django_db
def test_csv_import_partitioned_imports_every_range_with_file_line_numbers(tmp_path):
    # given bad lines that fall in different partitions
    path = tmp_path / "customers.csv"
    expected = customers_csv(path, 3000, bad={5: "a", 1499: "b,c,d,e", 2990: "f"})

    # when
    execution = run_in_process(
        operator.job_start(
            job_name="examples.csv_import_partitioned", params={"file": str(path), "partitions": 3}
        )
    )

    # then
    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    assert emails() == sorted(expected)
    partitions = StepExecution.objects.filter(execution=execution).exclude(partition="")
    assert sorted(partitions.values_list("partition", "status")) == [
        ("p0", "COMPLETED"), ("p1", "COMPLETED"), ("p2", "COMPLETED"),
    ]  # fmt: skip
    assert sum(p.read_count for p in partitions) == 2997
    assert all(p.read_count > 900 for p in partitions)  # the ranges split the work
    report = execution.execution_context["job"]["import"]
    assert [line["line"] for line in report["bad_lines"]] == [6, 1500, 2991]
    assert (report["read"], report["written"], report["bad_lines_skipped"]) == (2997, 2997, 3)


@pytest.mark.django_db
def test_csv_import_partitioned_restart_reruns_only_the_failed_partition(tmp_path, monkeypatch):
    # given a bad line in the last partition only, and no skips allowed
    path = tmp_path / "customers.csv"
    expected = customers_csv(path, 3000, bad={2500: "broken"})
    monkeypatch.setattr(batch_jobs, "IMPORT_SKIP_LIMIT", 0)
    params = {"file": str(path), "partitions": 3}
    failed = run_in_process(batch_start("examples.csv_import_partitioned", params))
    assert failed.status == ExecutionStatus.FAILED
    statuses = dict(
        StepExecution.objects.filter(execution=failed)
        .exclude(partition="")
        .values_list("partition", "status")
    )
    assert statuses == {"p0": "COMPLETED", "p1": "COMPLETED", "p2": "FAILED"}

    # when
    monkeypatch.setattr(batch_jobs, "IMPORT_SKIP_LIMIT", 10)
    restarted = run_in_process(operator.execution_restart(execution_id=failed.pk))

    # then p2 resumed from its own checkpoint; p0 and p1 were not run again
    assert restarted.status == ExecutionStatus.COMPLETED, restarted.error
    assert emails() == sorted(expected)
    rerun = StepExecution.objects.get(execution=restarted, partition="p2")
    assert rerun.read_skip_count == 1 and rerun.write_skip_count == 0
    carried = StepExecution.objects.filter(execution=restarted, partition__in=["p0", "p1"])
    assert all(p.started_at is None for p in carried)  # copied as COMPLETED, never claimed


@pytest.mark.django_db(databases=BOTH)
def test_db_migration_transforms_every_customer_into_the_warehouse():
    # given
    ExampleCustomer.objects.bulk_create(
        ExampleCustomer(
            email=f"  Person{n}@Example.COM ", name=f" Person   {n} ", active=n % 2 == 0
        )
        for n in range(1, 1202)
    )

    # when
    execution = run_in_process(
        operator.job_start(job_name="examples.db_migration", params={"page_size": 300})
    )

    # then
    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    assert WarehouseCustomer.objects.count() == 1201
    copy = WarehouseCustomer.objects.get(email="person8@example.com")
    source = ExampleCustomer.objects.get(email="  Person8@Example.COM ")
    assert (copy.name, copy.active, copy.source_updated_at) == ("Person 8", True, source.updated_at)
    migrate = step_execution(execution, "migrate")
    assert (migrate.read_count, migrate.write_count, migrate.commit_count) == (1201, 1201, 3)


@pytest.mark.django_db(databases=BOTH)
def test_db_migration_restarts_after_the_last_committed_key_and_a_rerun_is_harmless(monkeypatch):
    # given a run that fails on the 730th customer, after one chunk of 500 committed
    created = ExampleCustomer.objects.bulk_create(
        ExampleCustomer(email=f"p{n}@example.com", name=f"P {n}") for n in range(1, 1001)
    )
    poison = sorted(created, key=lambda c: c.pk)[729].email
    transform = batch_jobs.warehouse_row

    def failing_row(customer):
        if customer.email == poison:
            raise RuntimeError("the transformation broke")
        return transform(customer)

    monkeypatch.setattr(batch_jobs, "warehouse_row", failing_row)
    failed = run_in_process(batch_start("examples.db_migration", {}))
    assert failed.status == ExecutionStatus.FAILED
    assert WarehouseCustomer.objects.count() == 500

    # when restarted
    monkeypatch.undo()
    restarted = run_in_process(operator.execution_restart(execution_id=failed.pk))

    # then it read only what the committed chunk had not
    assert restarted.status == ExecutionStatus.COMPLETED, restarted.error
    assert step_execution(restarted, "migrate").read_count == 500
    assert WarehouseCustomer.objects.count() == 1000

    # and a whole new run writes every row again without duplicating any, picking up changes
    ExampleCustomer.objects.filter(email="p1@example.com").update(name="Renamed")
    again = run_in_process(operator.job_start_next_instance(job_name="examples.db_migration"))
    assert again.status == ExecutionStatus.COMPLETED, again.error
    assert step_execution(again, "migrate").write_count == 1000
    assert WarehouseCustomer.objects.count() == 1000
    assert WarehouseCustomer.objects.get(email="p1@example.com").name == "Renamed"


@pytest.mark.skipif(
    connections["default"].vendor != "postgresql", reason="only PostgreSQL imports by COPY"
)
def test_csv_import_writes_by_copy_on_postgresql():
    load = batch_jobs.csv_import().nodes["import"]
    writer = load.writer(StepContext(params={}, job_context={}, context={}, step_name="import",
                                     execution_id=0))  # fmt: skip
    assert isinstance(writer, PostgresCopyWriter)
    assert writer.columns == ["email", "name", "active", "updated_at"]
