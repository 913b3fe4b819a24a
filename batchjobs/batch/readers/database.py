"""Database readers: a Django queryset by keyset pages, a SQL query through a server-side
cursor on a connection of its own."""

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import QuerySet


def _jsonable_key(value: Any) -> Any:
    """A key as the execution context (JSON) can hold it. Numbers and strings stay as they are;
    anything else (dates, UUIDs, decimals) is kept as its string, which the database compares
    back to the column's type."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


class QuerysetReader:
    """Reads a queryset page by page with keyset pagination, restartably.

    Each page is `queryset.filter(key__gt=<last key read>).order_by(key)[:page_size]`: one
    short query per page, each as fast as the first (OFFSET pagination slows down with depth),
    no transaction or cursor held between pages, and rows inserted or deleted behind the key
    move no page boundary. The key must be unique and not null (the primary key by default);
    the queryset's own ordering is replaced by it.

    Items are what the queryset yields: model instances, or dicts for a values() queryset
    (which must include the key). The key of the last item returned is saved; open() resumes
    after it. Reads run outside the chunk transactions, on the queryset's own database.
    """

    def __init__(
        self, queryset: QuerySet, *, page_size: int = 1000, key: str = "pk", name: str = "queryset"
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.queryset, self.page_size, self.key = queryset, page_size, key
        # values() rows name the primary key by its column attribute ("id"), not "pk".
        self._item_key = queryset.model._meta.pk.attname if key == "pk" else key
        self._state_key = f"{name}.last_key"
        self._last: Any = None
        self._page: Iterator = iter(())
        self._last_page = False

    def open(self, context: dict) -> None:
        self._last = context.get(self._state_key)
        self._page, self._last_page = iter(()), False

    def update(self, context: dict) -> None:
        context[self._state_key] = self._last

    def close(self) -> None:
        self._page = iter(())

    def read(self) -> Any | None:
        item = next(self._page, None)
        if item is None:
            if self._last_page:
                return None
            queryset = self.queryset.order_by(self.key)
            if self._last is not None:
                queryset = queryset.filter(**{f"{self.key}__gt": self._last})
            page = list(queryset[: self.page_size])
            self._last_page = len(page) < self.page_size
            if not page:
                return None
            self._page = iter(page)
            item = next(self._page)
        if isinstance(item, dict):
            try:
                value = item[self._item_key]
            except KeyError:
                raise KeyError(
                    f"QuerysetReader: the values() rows must include the key {self._item_key!r}"
                ) from None
        else:
            value = getattr(item, self.key)
        self._last = _jsonable_key(value)
        return item


class SqlCursorReader:
    """Reads the rows of a SQL query as dicts (column name -> value), streaming them in
    `fetch_size` batches, restartably.

    sql, params: the query, with %s placeholders, as for Django's cursor.execute().
    using: the database alias to read.
    key: a unique, not null column of the result. The rows are read in key order and the key
        of the last row returned is saved; a restart reads `WHERE key > <saved key>`, exact
        even if rows before it changed in between. Without a key, the count of rows returned
        is saved and a restart skips that many rows (server-side, with MOVE, on PostgreSQL):
        exact only if the query has a deterministic ORDER BY and its earlier rows did not
        change.

    The query runs on a connection of its own, opened in open() and closed in close(), never
    on the connection whose transactions commit the chunks: a cursor there would be closed
    by the first chunk commit (or would have to be WITH HOLD, which PostgreSQL materialises in
    full before the first fetch). On PostgreSQL the rows come from a server-side cursor in a
    READ ONLY transaction held for the whole step: one scan and one consistent snapshot, memory
    flat in the row count. The price is a transaction open as long as the step: it holds back
    VACUUM on busy tables and must outlive idle_in_transaction_session_timeout, and a restart
    sees the data as it is then. Where those matter, use QuerysetReader: one short query per
    page, nothing held in between, each page seeing the latest data. On SQLite the query runs
    on a cursor of its own connection (WAL lets the chunk commits go on beside it).
    """

    def __init__(
        self,
        sql: str,
        params: Sequence | Mapping = (),
        *,
        using: str = "default",
        key: str | None = None,
        fetch_size: int = 1000,
        name: str = "sql",
    ) -> None:
        if fetch_size < 1:
            raise ValueError("fetch_size must be at least 1")
        self.sql, self.params, self.using = sql, params, using
        self.key, self.fetch_size = key, fetch_size
        self._key_state, self._count_state = f"{name}.last_key", f"{name}.count"
        self._connection: BaseDatabaseWrapper | None = None
        self._cursor: Any = None  # a CursorWrapper over the driver's cursor
        self._columns: list[str] = []
        self._key_index = -1
        self._rows: Iterator[tuple] = iter(())
        self._last: Any = None
        self._count = 0

    def open(self, context: dict) -> None:
        self._last, self._count = context.get(self._key_state), context.get(self._count_state, 0)
        connection = self._connection = connections.create_connection(self.using)
        try:
            self._execute(connection)
        except BaseException:
            self.close()  # the engine closes only streams that opened
            raise

    def _execute(self, connection: BaseDatabaseWrapper) -> None:
        if connection.vendor == "postgresql":
            connection.set_autocommit(False)  # a named cursor lives in a transaction
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION READ ONLY")
        sql, params = self._query(connection)
        self._cursor = connection.chunked_cursor()
        self._cursor.execute(sql, params)
        self._columns = [column[0] for column in self._cursor.description]
        if self.key is not None:
            if self.key not in self._columns:
                raise ValueError(f"key column {self.key!r} is not in the result {self._columns}")
            self._key_index = self._columns.index(self.key)
        elif self._count:
            self._skip(connection, self._count)

    def _query(self, connection) -> tuple[str, Any]:
        if self.key is None:
            return self.sql, self.params
        key = connection.ops.quote_name(self.key)
        sql = f"SELECT * FROM ({self.sql}) AS batch_source"
        if self._last is None:
            return f"{sql} ORDER BY batch_source.{key}", self.params
        if isinstance(self.params, Mapping):
            raise ValueError("a keyed SqlCursorReader takes positional %s params")
        return (
            f"{sql} WHERE batch_source.{key} > %s ORDER BY batch_source.{key}",
            [*self.params, self._last],
        )

    def _skip(self, connection: BaseDatabaseWrapper, count: int) -> None:
        if connection.vendor == "postgresql":
            self._cursor.cursor.scroll(count)  # MOVE: nothing crosses the wire
            return
        while count > 0:
            skipped = len(self._cursor.fetchmany(min(count, self.fetch_size)))
            if not skipped:
                return
            count -= skipped

    def update(self, context: dict) -> None:
        if self.key is None:
            context[self._count_state] = self._count
        else:
            context[self._key_state] = self._last

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if self._cursor is not None:
                self._cursor.close()
            if not connection.get_autocommit():
                connection.rollback()  # read only: nothing to keep
        finally:
            self._cursor = None
            connection.close()

    def read(self) -> dict[str, Any] | None:
        row = next(self._rows, None)
        if row is None:
            batch = self._cursor.fetchmany(self.fetch_size)
            if not batch:
                return None
            self._rows = iter(batch)
            row = next(self._rows)
        if self._key_index >= 0:
            self._last = _jsonable_key(row[self._key_index])
        else:
            self._count += 1
        return dict(zip(self._columns, row, strict=True))
