"""Worked examples of batch jobs, on the example tables (see models.py).

- examples.csv_import: a large CSV file of customers into ExampleCustomer, by COPY on
  PostgreSQL; malformed lines and invalid customers are skipped and reported with their line
  numbers.
- examples.db_migration: ExampleCustomer (database `default`) into WarehouseCustomer (database
  `warehouse`), transformed on the way, restartable, idempotent.
- examples.csv_import_partitioned: the CSV import split into byte ranges of the file, run in
  parallel on any workers.

Start one with the JobOperator, e.g.
`operator.job_start(job_name="examples.csv_import", params={"file": path})`, then
`operator.job_start_next_instance(...)` to import again (each start is a job instance).
"""

from dataclasses import asdict
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connections
from django.utils import timezone
from django.utils.translation import gettext as _

from batchjobs.batch.job import JobBuilder, StepContext, chunk_step, partition_step, tasklet_step
from batchjobs.batch.policies import SkipPolicy
from batchjobs.batch.readers import BadLine, BadLineReport, CsvReader, QuerysetReader, file_ranges
from batchjobs.batch.registry import batch_job
from batchjobs.batch.writers import DjangoWriter, PostgresCopyWriter
from batchjobs.models import StepExecution

from .models import ExampleCustomer, WarehouseCustomer

IMPORT_CHUNK_SIZE = 1000
# Bad lines, invalid customers and duplicate e-mails, all told; past this many the file is
# not worth importing and the step fails.
IMPORT_SKIP_LIMIT = 1000
REPORTED_BAD_LINES = 100
CUSTOMER_COLUMNS = ["email", "name", "active", "updated_at"]
ACTIVE_VALUES = {
    "": True, "1": True, "true": True, "t": True, "yes": True, "y": True,
    "0": False, "false": False, "f": False, "no": False, "n": False,
}  # fmt: skip


def _next_run(params: dict) -> dict:
    return {**params, "run": params.get("run", 0) + 1}


class InvalidCustomer(ValueError):
    """A well-formed CSV record whose values do not make a customer."""


class CustomerRow:
    """A CSV record {email, name, active} -> the ExampleCustomer columns the import writes.

    updated_at is NOT NULL and Django fills it (auto_now) only when Django writes the row:
    COPY needs the value, the time the import ran. Raises InvalidCustomer for values that
    would not make a customer, which the import skips (process_skip_count)."""

    def __init__(self, updated_at: datetime) -> None:
        self.updated_at = updated_at

    def process(self, item: dict[str, str]) -> dict[str, Any]:
        email = item["email"].strip().lower()
        local, at, domain = email.partition("@")
        if not local or not at or "." not in domain or len(email) > 254 or " " in email:
            raise InvalidCustomer(_("not an e-mail address: %(value)r") % {"value": item["email"]})
        name = item["name"].strip()
        if not name or len(name) > 200:
            raise InvalidCustomer(
                _("a name needs 1 to 200 characters: %(value)r") % {"value": item["name"]}
            )
        active = ACTIVE_VALUES.get(item.get("active", "").strip().lower())
        if active is None:
            raise InvalidCustomer(
                _("active must be true or false: %(value)r") % {"value": item["active"]}
            )
        return {"email": email, "name": name, "active": active, "updated_at": self.updated_at}


def _customer_writer(ctx: StepContext):
    # COPY where it exists; the SQLite quick start inserts through the ORM instead.
    if connections["default"].vendor == "postgresql":
        return PostgresCopyWriter(ExampleCustomer, CUSTOMER_COLUMNS)
    return DjangoWriter(ExampleCustomer)


def _customer_reader(ctx: StepContext) -> CsvReader:
    return CsvReader(
        ctx.params["file"],
        delimiter=ctx.params.get("delimiter", ","),
        encoding=ctx.params.get("encoding", "utf-8"),
        range=ctx.partition or None,
    )


def _import_step(name: str):
    """The chunk step both CSV imports run: on the whole file, or on a partition's range."""
    return chunk_step(
        name,
        reader=_customer_reader,
        processor=CustomerRow(updated_at=timezone.now()),
        writer=_customer_writer,
        chunk_size=IMPORT_CHUNK_SIZE,
        # IntegrityError: an e-mail already imported, or twice in the file. The chunk fails
        # as a whole, then the engine writes it item by item and skips the duplicates.
        skip=SkipPolicy((BadLine, InvalidCustomer, IntegrityError), limit=IMPORT_SKIP_LIMIT),
        listeners=(BadLineReport(limit=REPORTED_BAD_LINES),),
        overlap_writes=True,  # the file is read on while PostgreSQL takes in the last chunk
    )


def _report(step_name: str):
    def report(ctx: StepContext) -> None:
        """Sum up the import into the job's context: this execution's counts (a restart
        counts what it did itself, as each StepExecution does) and the first bad lines of the
        whole import (those of every partition, in line order)."""
        rows = StepExecution.objects.filter(execution_id=ctx.execution_id, step_name=step_name)
        whole = rows.filter(partition="").first()
        bad_lines = sorted(
            (line for row in rows for line in (row.execution_context or {}).get("bad_lines", [])),
            key=lambda line: line["line"],
        )
        ctx.job_context["import"] = {
            "read": whole.read_count if whole else 0,
            "written": whole.write_count if whole else 0,
            "bad_lines_skipped": whole.read_skip_count if whole else 0,
            "invalid_skipped": whole.process_skip_count if whole else 0,
            "duplicates_skipped": whole.write_skip_count if whole else 0,
            "bad_lines": bad_lines[:REPORTED_BAD_LINES],
        }

    return report


IMPORT_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "file": {"type": "string", "minLength": 1, "description": "Path of the CSV file."},
        "delimiter": {"type": "string", "minLength": 1, "maxLength": 1},
        "encoding": {"type": "string", "minLength": 1},
        "run": {"type": "integer", "minimum": 0, "description": "Tells imports of one file apart."},
    },
    "required": ["file"],
    "additionalProperties": False,
}


@batch_job(
    "examples.csv_import",
    parameters_schema=IMPORT_PARAMETERS,
    identifying=["file", "run"],
    incrementer=_next_run,
)
def csv_import():
    """Import a CSV file of customers (email,name,active) into ExampleCustomer.

    Bad lines (wrong field count, undecodable, malformed), invalid customers and e-mails that
    exist already are skipped, up to IMPORT_SKIP_LIMIT in all; the first bad lines are listed
    with their line numbers in the step's context and the job's report. A stopped or failed
    import restarts from its last committed chunk: by COPY in the chunk's transaction, every
    line is imported exactly once."""
    return (
        JobBuilder()
        .start(_import_step("import"))
        .next(tasklet_step("report", _report("import")))
        .build()
    )


def _file_partitions(ctx: StepContext, grid_size: int) -> dict[str, dict]:
    ranges = file_ranges(ctx.params["file"], ctx.params.get("partitions", grid_size))
    width = len(str(len(ranges) - 1))
    return {
        name: {"name": name, **asdict(file_range)}
        for index, file_range in enumerate(ranges)
        for name in [f"p{index:0{width}d}"]
    }


@batch_job(
    "examples.csv_import_partitioned",
    parameters_schema={
        **IMPORT_PARAMETERS,
        "properties": {
            **IMPORT_PARAMETERS["properties"],
            "partitions": {"type": "integer", "minimum": 1, "maximum": 64},
        },
    },
    identifying=["file", "run"],
    incrementer=_next_run,
)
def csv_import_partitioned():
    """The CSV import, with the file split into `partitions` byte ranges (4 by default) that
    workers import in parallel, each restartable on its own. Each range starts at a line
    start, so the file must have no line breaks inside quoted fields."""
    partitioned = partition_step(
        "import", partitioner=_file_partitions, step=_import_step("import_range"), grid_size=4
    )
    return JobBuilder().start(partitioned).next(tasklet_step("report", _report("import"))).build()


def warehouse_row(customer: ExampleCustomer) -> dict[str, Any]:
    """A customer as the warehouse keeps it: e-mail normalised, blanks in the name collapsed,
    the source's updated_at kept to tell stale copies."""
    return {
        "email": customer.email.strip().lower(),
        "name": " ".join(customer.name.split()),
        "active": customer.active,
        "source_updated_at": customer.updated_at,
    }


@batch_job(
    "examples.db_migration",
    parameters_schema={
        "type": "object",
        "properties": {
            "page_size": {"type": "integer", "minimum": 1, "maximum": 10000},
            "run": {"type": "integer", "minimum": 0},
        },
        "additionalProperties": False,
    },
    identifying=["run"],
    incrementer=_next_run,
)
def db_migration():
    """Copy ExampleCustomer (database `default`) into WarehouseCustomer (database `warehouse`).

    The reader pages through the customers by primary key (keyset), and the checkpoint is the
    last key of the last committed chunk. The warehouse rows commit on the warehouse, apart
    from the chunk's transaction on `default`: a chunk that fails after its warehouse commit
    is written again by the retry or restart. The writer is therefore an upsert by e-mail,
    which makes writing a chunk twice harmless, and running the whole job again a refresh."""
    migrate = chunk_step(
        "migrate",
        reader=lambda ctx: QuerysetReader(
            ExampleCustomer.objects.all(), page_size=ctx.params.get("page_size", 500)
        ),
        processor=warehouse_row,
        writer=lambda ctx: DjangoWriter(
            WarehouseCustomer,
            mode="upsert",
            unique_fields=["email"],
            update_fields=["name", "active", "source_updated_at"],
        ),
        chunk_size=500,
    )
    return JobBuilder().start(migrate).build()
