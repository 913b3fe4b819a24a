"""Item writers that ship: Django bulk insert/upsert, PostgreSQL COPY, CSV files, HTTP.

A writer's write(items) runs inside the chunk's transaction on the `default` database: what it
writes there commits or rolls back with the chunk and its checkpoint. What it writes anywhere
else (another database alias, a file, a remote service) does not roll back; each writer below
says how it stays correct when a chunk is written again after a rollback or a restart.
"""

import csv
import hashlib
import io
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from operator import itemgetter
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, router
from django.db.models import Model
from psycopg import sql

from batchjobs.execution.http_client import http_call
from batchjobs.models import BatchLog

# --- Django models ------------------------------------------------------------------------------


class DjangoWriter:
    """Writes items as rows of a Django model with bulk_create, one INSERT per `batch_size`
    items (all of the chunk by default).

    Items are model instances or dicts of field values. mode:
    - "insert": plain inserts; a duplicate key fails the chunk (the step's skip policy may
      then skip the offending items, as the engine scans the chunk item by item).
    - "upsert": INSERT ... ON CONFLICT (unique_fields) DO UPDATE SET update_fields (all other
      concrete fields by default), on PostgreSQL and SQLite. Within a chunk the last item of
      each key wins, since one statement may not touch a row twice.

    using: the database alias (the model's router decides by default). On `default` the rows
    commit with the chunk. On another alias they commit on their own, before the chunk does:
    if the chunk then rolls back, the restarted step writes them again, so a writer to
    another alias should be an upsert, which makes writing a chunk twice harmless.
    """

    def __init__(
        self,
        model: type[Model],
        *,
        mode: str = "insert",
        unique_fields: Sequence[str] = (),
        update_fields: Sequence[str] | None = None,
        using: str | None = None,
        batch_size: int | None = None,
    ) -> None:
        if mode not in ("insert", "upsert"):
            raise ValueError(f"mode must be 'insert' or 'upsert', not {mode!r}")
        if mode == "upsert" and not unique_fields:
            raise ValueError("an upsert needs the unique_fields its conflicts are detected on")
        self.model, self.mode, self.batch_size = model, mode, batch_size
        self.unique_fields = list(unique_fields)
        if update_fields is None and mode == "upsert":
            update_fields = [
                field.name
                for field in model._meta.concrete_fields
                if not field.primary_key and field.name not in self.unique_fields
            ]
        self.update_fields = list(update_fields or ())
        self.using = using or router.db_for_write(model)
        self._manager = model._default_manager.db_manager(self.using)

    def write(self, items: list) -> None:
        model = self.model
        objects = [item if isinstance(item, model) else model(**item) for item in items]
        if self.mode == "insert":
            self._manager.bulk_create(objects, batch_size=self.batch_size)
            return
        key = itemgetter(*[model._meta.get_field(name).attname for name in self.unique_fields])
        last_of_each = {key(vars(obj)): obj for obj in objects}
        self._manager.bulk_create(
            list(last_of_each.values()),
            batch_size=self.batch_size,
            update_conflicts=True,
            unique_fields=self.unique_fields,
            update_fields=self.update_fields,
        )


# --- PostgreSQL COPY ----------------------------------------------------------------------------


class NotPostgreSQL(Exception):
    """PostgresCopyWriter was given a database that is not PostgreSQL."""


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NULL = "\\N"
_BOOLS = {True: "t", False: "f"}
# Types whose equal values always have the same text, so a chunk converts each distinct value
# once (a timestamp shared by every row costs one isoformat()). Not float or Decimal: 0.0 ==
# -0.0 and Decimal("1.0") == Decimal("1.00"), yet their texts differ.
_CACHEABLE = (int, datetime, date, time_of_day, timedelta)


def _copy_value(value: Any) -> str:
    """One value in COPY's text format."""
    if value is None:
        return _NULL
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    if isinstance(value, bool):
        return _BOOLS[value]
    if isinstance(value, datetime | date | time_of_day):
        return value.isoformat()
    if isinstance(value, timedelta):
        return f"{value.total_seconds()} seconds"
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\\\x" + bytes(value).hex()  # bytea's hex form, its backslash escaped for COPY
    if isinstance(value, dict | list):
        return json.dumps(value, cls=DjangoJSONEncoder).translate(_ESCAPES)
    return str(value).translate(_ESCAPES)


def _copy_column(values: Sequence) -> Sequence[str]:
    """A column's values in COPY's text format. Converting column by column lets the common
    cases run at C speed: text that needs no escaping is used as it is (four substring scans
    of the joined column tell), booleans map through a dict, repeated values convert once."""
    kinds = set(map(type, values))
    if kinds == {str}:
        joined = "".join(values)
        if "\\" in joined or "\t" in joined or "\n" in joined or "\r" in joined:
            return [value.translate(_ESCAPES) for value in values]
        return values
    if kinds == {bool}:
        return list(map(_BOOLS.__getitem__, values))
    if len(kinds) == 1 and issubclass(next(iter(kinds)), _CACHEABLE):
        texts = {value: _copy_value(value) for value in set(values)}
        return list(map(texts.__getitem__, values))
    return list(map(_copy_value, values))


def copy_text(columns: Sequence[Sequence]) -> str:
    """Rows in PostgreSQL COPY text format, from their values column by column."""
    if not columns or not len(columns[0]):
        return ""
    texts = [_copy_column(values) for values in columns]
    return "\n".join(map("\t".join, zip(*texts, strict=True))) + "\n"


class PostgresCopyWriter:
    """Writes items into a PostgreSQL table with COPY ... FROM STDIN (psycopg 3), on the
    chunk's own connection and transaction: the rows commit or roll back with the chunk and
    its checkpoint, so a restart never writes a committed row twice.

    table: a table name ("schema.table" allowed) or a model, whose db_table is used.
    columns: the columns written, in order. Items are dicts holding (at least) those keys, or
        sequences of values in that order. None is NULL. Columns left out take their SQL
        default: a Django default (auto_now, default=...) is not one, so give such values.
    using: the database alias. Only on `default` do the rows share the chunk's transaction;
        elsewhere each COPY commits on its own, and since COPY cannot upsert, a chunk written
        again after a rollback is duplicated (or fails on a unique key): prefer DjangoWriter's
        upsert there.

    Each chunk is one COPY of a text block built column by column (see copy_text), several
    times cheaper than psycopg's write_row per row. Database errors come out as Django's
    (IntegrityError...), so a skip policy names them as it would for any other writer; a
    failed chunk is then scanned one item per COPY. PostgreSQL only: any other database is
    refused when the writer is made, naming DjangoWriter as the portable choice.
    """

    def __init__(
        self, table: str | type[Model], columns: Sequence[str], *, using: str = "default"
    ) -> None:
        connection = connections[using]
        if connection.vendor != "postgresql":
            raise NotPostgreSQL(
                f"PostgresCopyWriter needs PostgreSQL; database {using!r} is "
                f"{connection.vendor}. Use DjangoWriter, which works on every database."
            )
        if not columns:
            raise ValueError("name the columns to copy")
        name = table if isinstance(table, str) else table._meta.db_table
        self.columns, self.using = list(columns), using
        self._statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(*name.split(".")), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        self._getters = [itemgetter(column) for column in self.columns]

    def write(self, items: list) -> None:
        if items:
            with self.stream() as write_part:
                write_part(items)

    @contextmanager
    def stream(self) -> Iterator[Callable[[list], None]]:
        """One COPY open for a chunk, taking its items in one or more parts, that ends with the
        block: a step with overlap_writes reads the next chunk in between, while the server
        inserts these rows."""
        connection = connections[self.using]
        with connection.cursor() as cursor, connection.wrap_database_errors:
            with cursor.cursor.copy(self._statement) as copy:
                yield lambda items: copy.write(self._text(items)) if items else None

    def _text(self, items: list) -> str:
        if isinstance(items[0], Mapping):
            columns = [list(map(getter, items)) for getter in self._getters]
        else:
            columns = list(zip(*items, strict=True))
            if len(columns) != len(self.columns):
                raise ValueError(f"rows of {len(columns)} values for {len(self.columns)} columns")
        return copy_text(columns)


# --- CSV files ----------------------------------------------------------------------------------


class CsvWriter:
    """Writes items as CSV lines, restartably: a restarted step never duplicates a line.

    path: the file. A first run creates it (replacing any file there) and writes the header
        row if `header`. fieldnames: the columns, in order. Items are dicts (keys that are not
        fieldnames are ignored, a missing one is an error) or sequences in fieldnames order.
    dialect, **fmtparams: as for csv.writer; encoding of the file.

    write() formats the chunk into memory; update(), called just before the chunk commits,
    appends it to the file and saves the file's length in the checkpoint. open() with a saved
    checkpoint truncates the file to that length: lines of a chunk that was written but never
    committed are cut, and the restarted step writes them again once. (A chunk written and
    then rolled back within one run, and retried by the step's retry policy, is appended
    again; a restart still cuts the file back to the last committed chunk.) The file is
    flushed to the operating system at each chunk, not fsynced: like the chunk commits, which
    are asynchronous, a power loss may lose the last chunks; a checkpoint past the end of the
    file is then refused rather than padded.
    """

    def __init__(
        self,
        path,
        fieldnames: Sequence[str],
        *,
        header: bool = True,
        encoding: str = "utf-8",
        dialect: str | type[csv.Dialect] = "excel",
        name: str = "csv_writer",
        **fmtparams,
    ) -> None:
        if not fieldnames:
            raise ValueError("name the CSV columns")
        self.path, self.fieldnames = os.fspath(path), list(fieldnames)
        self.header, self.encoding = header, encoding
        self._state = f"{name}.offset"
        self._text = io.StringIO()
        self._csv = csv.writer(self._text, dialect, **fmtparams)
        self._row = itemgetter(*self.fieldnames) if len(self.fieldnames) > 1 else None
        self._file = None
        self._pending: list[bytes] = []

    def _format(self, rows) -> bytes:
        self._text.seek(0)
        self._text.truncate()
        self._csv.writerows(rows)
        return self._text.getvalue().encode(self.encoding)

    def open(self, context: dict) -> None:
        offset = context.get(self._state)
        self._pending = []
        if offset is None:
            self._file = open(self.path, "wb")  # closed in close()
            if self.header:
                self._file.write(self._format([self.fieldnames]))
            return
        self._file = open(self.path, "r+b")  # closed in close()
        size = os.fstat(self._file.fileno()).st_size
        if size < offset:
            self._file.close()
            raise ValueError(
                f"{self.path} has {size} bytes but the checkpoint is at byte {offset}: "
                "lines the step committed are missing from the file"
            )
        self._file.truncate(offset)
        self._file.seek(offset)

    def write(self, items: list) -> None:
        if not items:
            return
        if isinstance(items[0], Mapping):
            if self._row is None:
                field = self.fieldnames[0]
                rows = [(item[field],) for item in items]
            else:
                rows = list(map(self._row, items))
        else:
            rows = items
        # Formatted (and encoded) here, so that an item that cannot be written fails write(),
        # where the engine's skip policy sees it, and leaves nothing half-written behind.
        self._pending.append(self._format(rows))

    def update(self, context: dict) -> None:
        if self._pending:
            self._file.write(b"".join(self._pending))
            self._pending = []
        self._file.flush()
        context[self._state] = self._file.tell()

    def close(self) -> None:
        # Lines still pending belong to a chunk that did not commit: they are dropped.
        self._pending = []
        if self._file is not None:
            self._file.close()
            self._file = None


# --- HTTP ---------------------------------------------------------------------------------------


class HttpWriteError(Exception):
    """The service answered a chunk with a status other than 2xx."""


def instance_execution_id(execution_id: int) -> int:
    """The first execution of the job instance `execution_id` belongs to: it stays the same
    across the instance's restarts, whose executions each have an id of their own."""
    instance_key = (
        BatchLog.objects.filter(pk=execution_id).values_list("instance_key", flat=True).first()
    )
    if not instance_key:
        return execution_id
    return (
        BatchLog.objects.filter(instance_key=instance_key)
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )


def _step_label(step_context) -> str:
    """The step's name, and for a partition its name (or a digest of its context)."""
    partition = step_context.partition
    if not partition:
        return step_context.step_name
    label = (
        partition.get("name")
        or hashlib.sha256(json.dumps(partition, sort_keys=True, default=str).encode()).hexdigest()[
            :12
        ]
    )
    return f"{step_context.step_name}[{label}]"


class HttpWriter:
    """Posts each chunk as a JSON array through the hardened HTTP client, with
    `Idempotency-Key: <execution id>:<step>:<chunk number>` so the service can recognise a
    chunk sent again and not apply it twice.

    url: where chunks go; step: the StepContext the writer factory was called with (it names
    the execution and the step). Items must be JSON-serialisable (DjangoJSONEncoder: dates,
    decimals and UUIDs are). A status other than 2xx raises HttpWriteError; name it (and
    requests.ConnectionError) in the step's RetryPolicy to retry the chunk.

    The key is stable wherever the same chunk is sent again: a retry of the chunk, a new
    attempt of the execution, and a restart, because <execution id> is the id of the job
    instance's first execution (a restart has an id of its own) and the chunk number comes
    from the checkpoint (chunks committed + 1). In the step's partitions <step> is
    "step[partition]". When a failed chunk is scanned, each item is posted alone, as
    "<key>:<n>" for the n-th of them.
    """

    def __init__(
        self,
        url: str,
        *,
        step,
        headers: Mapping[str, str] | None = None,
        method: str = "POST",
        timeout_seconds: float = 30.0,
        name: str = "http_writer",
    ) -> None:
        self.url, self.method, self.timeout_seconds = url, method, timeout_seconds
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.key_prefix = f"{instance_execution_id(step.execution_id)}:{_step_label(step)}"
        self._state = f"{name}.chunks"
        self._chunks = 0
        self._first_size: int | None = None
        self._parts = 0

    def open(self, context: dict) -> None:
        self._chunks = context.get(self._state, 0)
        self._first_size, self._parts = None, 0

    def update(self, context: dict) -> None:
        self._chunks += 1
        context[self._state] = self._chunks
        self._first_size, self._parts = None, 0

    def close(self) -> None:
        self._first_size, self._parts = None, 0

    def idempotency_key(self, items: list) -> str:
        """The key of this write: the chunk's, or for an item of a scanned chunk, the chunk's
        and its place among the items written alone."""
        key = f"{self.key_prefix}:{self._chunks + 1}"
        if self._first_size is None:
            self._first_size = len(items)
        if len(items) == self._first_size:
            return key
        self._parts += 1
        return f"{key}:{self._parts}"

    def write(self, items: list) -> None:
        if not items:
            return
        headers = {**self.headers, "Idempotency-Key": self.idempotency_key(items)}
        body = json.dumps(items, cls=DjangoJSONEncoder).encode()
        response = http_call(
            method=self.method, url=self.url, headers=headers, body=body,
            deadline=time.monotonic() + self.timeout_seconds,
        )  # fmt: skip
        if not 200 <= response.status < 300:
            raise HttpWriteError(
                f"{self.method} {self.url} ({headers['Idempotency-Key']}): "
                f"HTTP {response.status}: {response.text()[:200]}"
            )
