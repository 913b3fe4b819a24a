"""Database writers: Django bulk insert/upsert (every database) and PostgreSQL COPY."""

import json
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
        attnames = {field.name: field.attname for field in model._meta.concrete_fields}
        key = itemgetter(*[attnames[name] for name in self.unique_fields])
        last_of_each = {key(vars(obj)): obj for obj in objects}
        self._manager.bulk_create(
            list(last_of_each.values()),
            batch_size=self.batch_size,
            update_conflicts=True,
            unique_fields=self.unique_fields,
            update_fields=self.update_fields,
        )


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
        columns: list[Sequence]
        if isinstance(items[0], Mapping):
            columns = [list(map(getter, items)) for getter in self._getters]
        else:
            columns = list(zip(*items, strict=True))
            if len(columns) != len(self.columns):
                raise ValueError(f"rows of {len(columns)} values for {len(self.columns)} columns")
        return copy_text(columns)
