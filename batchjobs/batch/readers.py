"""Item readers that ship: flat files (CSV, JSON lines), Django querysets, raw SQL, paginated HTTP.

Every reader here is an ItemStream: `open(context)` seeks to the position saved in the step's
execution context, `update(context)` saves the position reached, and the engine commits that
checkpoint with the chunk's writes. A restarted step therefore resumes exactly after the last
committed chunk. Readers are built by the step's reader factory, once per step execution::

    chunk_step("load", reader=lambda ctx: CsvReader(ctx.params["file"]), writer=..., ...)

Each reader keeps its position under keys prefixed by its `name` ("csv.offset", ...), so two
readers in one job never share a key; give a reader a name of its own only if a step's context
holds the keys of another stream of the same kind.
"""

import codecs
import csv
import json
import os
import time
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate, chain
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from django.db import connections
from django.db.models import QuerySet

from batchjobs.execution.http_client import http_call

from .listeners import ChunkListener, SkipListener
from .policies import RetryPolicy

UTF8_BOM = codecs.BOM_UTF8
# How far a bad line's text is quoted in its BadLine: enough to recognise it in a report.
EXCERPT_CHARS = 200
# Flat files are read this many bytes of lines at a time: the per-line bookkeeping runs at C
# speed over a batch, and memory stays flat whatever the file's size.
LINE_BATCH_BYTES = 1 << 16
NO_RETRY = RetryPolicy()


class BadLine(ValueError):
    """A line of a flat file that cannot become an item: wrong field count, bytes that do not
    decode, malformed CSV or JSON. `line` is the 1-based physical line number in the file (the
    header is line 1) where the record starts.

    Readers raise it from read() after moving past the record, so a step whose
    SkipPolicy names BadLine (or ValueError) counts it as a read skip and reads on::

        chunk_step(..., skip=SkipPolicy((BadLine,), limit=100), listeners=(BadLineReport(),))
    """

    def __init__(self, line: int, reason: str, text: str = "") -> None:
        super().__init__(f"line {line}: {reason}")
        self.line, self.reason, self.text = line, reason, text[:EXCERPT_CHARS]


class BadLineReport(ChunkListener, SkipListener):
    """A chunk and skip listener that records the bad lines a step skipped: the first `limit`
    of them, as {"line", "reason", "text"}, in the step's execution context under `key`
    (saved with each chunk, so they are visible on the StepExecution while it runs and after).

    A line skipped in a chunk that was then rolled back is read and skipped again after a
    restart; it is recorded once, by its line number. Register it on the chunk step (on a
    partitioned step's worker step, each partition records its own)."""

    def __init__(self, *, limit: int = 100, key: str = "bad_lines") -> None:
        self.limit, self.key = limit, key
        self._context: dict | None = None

    def before_chunk(self, step_context) -> None:
        self._context = step_context.context

    def on_skip_in_read(self, error: BaseException) -> None:
        if not isinstance(error, BadLine) or self._context is None:
            return
        recorded = self._context.setdefault(self.key, [])
        if len(recorded) < self.limit and all(entry["line"] != error.line for entry in recorded):
            recorded.append({"line": error.line, "reason": error.reason, "text": error.text})


# --- flat files ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileRange:
    """The part of a file one partition reads: the records that start at a byte offset in
    [start, end) (end None: to the end of the file). `lines_before` is the number of lines
    before `start`, so that line numbers stay those of the whole file. `start` is always the
    start of a line."""

    start: int = 0
    end: int | None = None
    lines_before: int = 0


def file_ranges(path: str | os.PathLike, count: int) -> list[FileRange]:
    """Split a file into at most `count` byte ranges of about equal size, each starting at a
    line start, for a partitioned step (each partition's reader gets one `range=`).

    The boundaries are found with one readline() after each seek, and the line numbers with
    one pass counting newlines, so splitting costs a read of the file at C speed, not a parse.
    A CSV file with line breaks inside quoted fields must not be split this way: a boundary
    could fall inside a record.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    size = os.path.getsize(path)
    starts = [0]
    with open(path, "rb") as file:
        for index in range(1, count):
            file.seek(max(size * index // count - 1, starts[-1]))
            file.readline()  # to the end of the line the target falls in
            boundary = file.tell()
            if starts[-1] < boundary < size:
                starts.append(boundary)
        lines_before, position, block_size = [0], 0, 1 << 20
        file.seek(0)
        for boundary in starts[1:]:
            newlines = lines_before[-1]
            while position < boundary:
                block = file.read(min(block_size, boundary - position))
                newlines += block.count(b"\n")
                position += len(block)
            lines_before.append(newlines)
    ends: list[int | None] = [*starts[1:], None]
    return [FileRange(s, e, n) for s, e, n in zip(starts, ends, lines_before, strict=True)]


def _as_range(value: FileRange | Mapping | None) -> FileRange:
    if value is None:
        return FileRange()
    if isinstance(value, FileRange):
        return value
    return FileRange(**{k: value[k] for k in ("start", "end", "lines_before") if k in value})


class _LineFile:
    """What CsvReader and JsonLinesReader share: a binary file read in batches of lines, the
    byte offset and line number of the next record (the restart position), a byte range.

    The decoded lines flow to the parser through one iterator, `_source`, a batch at a time:
    the per-line work (decoding, counting bytes and lines) runs at C speed over a batch instead
    of in Python for each line. The parser tells how many lines it has taken (`_taken()`), and
    the position follows from the byte lengths of the current batch's lines. Offsets are
    counted from the bytes of each line rather than asked of the file (tell() is slow and
    unavailable while iterating), which is what makes seeking on restart exact."""

    def __init__(
        self,
        path,
        *,
        encoding: str,
        range: FileRange | Mapping | None,
        name: str,
    ) -> None:
        self.path, self.encoding, self.name = os.fspath(path), encoding, name
        self.range = _as_range(range)
        self._offset_key, self._line_key = f"{name}.offset", f"{name}.line"
        self._file = None
        self._end = self.range.end if self.range.end is not None else float("inf")
        self._restart(0, 0)

    def _restart(self, offset: int, line: int) -> None:
        """A new source of lines, from byte `offset`, the start of line `line` + 1."""
        # Lines before the source's first line and before the current batch's first line.
        self._source_line = self._batch_line = line
        # The byte offset where each line of the current batch starts, then where it ends.
        self._batch_ends = [offset]
        self._batch_texts: list[str] = []
        # Lines taken from the source after which the next record starts at or past the
        # range's end: known once a batch reaches that far.
        self._stop = 0 if offset >= self._end else float("inf")
        # Line numbers (in the file) of lines that did not decode, until a record takes them.
        self._undecodable: set[int] = set()
        self._source: Iterator[str] = chain.from_iterable(self._batches())
        self._source_changed()

    @property
    def position(self) -> tuple[int, int]:
        """(byte offset, lines read) of the next record."""
        line = self._source_line + self._taken()
        return self._batch_ends[line - self._batch_line], line

    def open(self, context: dict) -> None:
        self._file = open(self.path, "rb")  # closed in close()
        if self._file.read(len(UTF8_BOM)) != UTF8_BOM:
            self._file.seek(0)
        self._seek(self._file.tell(), 0)
        self._opened()
        if self._offset_key in context:
            offset, line = context[self._offset_key], context[self._line_key]
            size = os.path.getsize(self.path)
            if offset > size:
                raise ValueError(
                    f"{self.path} has {size} bytes but the checkpoint is at byte {offset}: "
                    "the file was replaced or truncated since the step ran"
                )
            self._seek(offset, line)
        elif self.range.start > self.position[0]:
            self._seek(self.range.start, self.range.lines_before)

    def _opened(self) -> None:
        """Called at the start of the file, before seeking to the restart position."""

    def _seek(self, offset: int, line: int) -> None:
        self._file.seek(offset)
        self._restart(offset, line)

    def _source_changed(self) -> None:
        """Called when `_source` is a new iterator: the parser starts over on it."""

    def _taken(self) -> int:
        """The number of lines the parser has taken from `_source`."""
        raise NotImplementedError

    def update(self, context: dict) -> None:
        context[self._offset_key], context[self._line_key] = self.position

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _batches(self) -> Iterator[list[str]]:
        """The file's lines, decoded, in batches of about LINE_BATCH_BYTES. The parser takes a
        batch only once it has taken every line of the one before, so the line it is at is
        always in the current batch. A line that does not decode is handed out with
        replacement characters and remembered: a generator that raised would be finished, and
        csv.reader would lose its place."""
        encoding, end = self.encoding, self._end
        while raws := self._file.readlines(LINE_BATCH_BYTES):
            self._batch_line += len(self._batch_ends) - 1
            try:
                texts = [raw.decode(encoding) for raw in raws]
            except UnicodeDecodeError:
                texts = self._decode_each(raws)
            ends = list(accumulate(map(len, raws), initial=self._batch_ends[-1]))
            self._batch_ends, self._batch_texts = ends, texts
            if end <= ends[-1]:
                self._stop = self._batch_line - self._source_line + bisect_left(ends, end)
            yield texts

    def _decode_each(self, raws: list[bytes]) -> list[str]:
        texts = []
        for number, raw in enumerate(raws, self._batch_line + 1):
            try:
                texts.append(raw.decode(self.encoding))
            except UnicodeDecodeError:
                self._undecodable.add(number)
                texts.append(raw.decode(self.encoding, errors="replace"))
        return texts

    def _took_undecodable(self, before: int, after: int) -> bool:
        """Whether a line the parser took after `before` lines, up to `after`, did not decode.
        Forgets the lines up to `after`: they are behind the parser now."""
        first, last = self._source_line + before, self._source_line + after
        taken = {number for number in self._undecodable if number <= last}
        self._undecodable -= taken
        return any(number > first for number in taken)

    def _text_of(self, taken: int) -> str:
        """The text of the last of the first `taken` lines of the source (for a BadLine)."""
        index = self._source_line + taken - self._batch_line - 1
        return self._batch_texts[index] if 0 <= index < len(self._batch_texts) else ""


class CsvReader(_LineFile):
    """Reads a CSV file as dicts, one per record, restartably.

    path: the file, read as bytes and decoded line by line with `encoding` (one whose line
        ends are ASCII: UTF-8, Latin-1, cp1252...); a UTF-8 byte order mark is ignored.
    dialect, **fmtparams: as for csv.reader (delimiter=";", quotechar="'", strict=True...).
    header: the first line names the columns and is not an item.
    fieldnames: the items' keys, column by column; by default the header's names.
    rename: header name -> item key, for the columns to rename (a name missing from the
        header is an error, which catches typos).
    range: read only the records starting in this FileRange (partitioned steps).

    read() returns the next record as {key: string}, skipping blank lines, or None at the end
    of the file (or range). A record with another number of fields than the header, bytes that
    do not decode, or CSV the parser rejects raises BadLine with its line number, after the
    reader has moved past it.

    The position saved is the byte offset and line number of the next record; open() seeks
    there, so a restart costs nothing however far into the file it resumes. The file must not
    change between a run and its restart.
    """

    def __init__(
        self,
        path,
        *,
        dialect: str | type[csv.Dialect] = "excel",
        header: bool = True,
        fieldnames: Sequence[str] | None = None,
        rename: Mapping[str, str] | None = None,
        encoding: str = "utf-8",
        range: FileRange | Mapping | None = None,
        name: str = "csv",
        **fmtparams,
    ) -> None:
        if not header and fieldnames is None:
            raise ValueError("a CSV file without a header row needs fieldnames")
        if rename and not header:
            raise ValueError("rename maps header names: it needs header=True")
        self.dialect, self.fmtparams = dialect, fmtparams
        self.header, self.rename = header, dict(rename or {})
        self.keys: list[str] = list(fieldnames) if fieldnames is not None else []
        super().__init__(path, encoding=encoding, range=range, name=name)

    def _source_changed(self) -> None:
        self._rows = csv.reader(self._source, self.dialect, **self.fmtparams)

    def _taken(self) -> int:
        return self._rows.line_num

    def _opened(self) -> None:
        if self.header:
            self._read_header()
        if len(set(self.keys)) != len(self.keys):
            raise ValueError(f"{self.path}: duplicate column names {self.keys}")

    def _read_header(self) -> None:
        try:
            names = next(self._rows)
        except StopIteration:  # an empty file: no header and no items
            return
        except csv.Error as error:
            raise ValueError(f"{self.path}: unreadable header row: {error}") from error
        if self._took_undecodable(0, self._rows.line_num):
            raise ValueError(f"{self.path}: the header row is not valid {self.encoding}")
        if self.keys:
            if len(self.keys) != len(names):
                raise ValueError(
                    f"{self.path}: {len(self.keys)} fieldnames given, "
                    f"the header has {len(names)} columns"
                )
            return
        missing = sorted(set(self.rename) - set(names))
        if missing:
            raise ValueError(f"{self.path}: rename names columns not in the header: {missing}")
        self.keys = [self.rename.get(name, name) for name in names]

    def read(self) -> dict[str, str] | None:
        rows, keys = self._rows, self.keys
        width = len(keys)
        while (before := rows.line_num) < self._stop:
            try:
                row = next(rows)
            except StopIteration:
                return None
            except csv.Error as error:
                raise self._bad_line(before, f"malformed CSV: {error}") from None
            if self._undecodable and self._took_undecodable(before, rows.line_num):
                raise self._bad_line(before, f"bytes that are not valid {self.encoding}")
            if len(row) == width:  # so zip need not check the lengths again, at a cost per row
                return dict(zip(keys, row, strict=False))
            if row:  # a blank line is no record
                raise self._bad_line(before, f"expected {width} fields, found {len(row)}")
        return None

    def _bad_line(self, before: int, reason: str) -> BadLine:
        """The record the parser took after `before` lines, as a BadLine: its first line's
        number, and the text of its last line."""
        return BadLine(self._source_line + before + 1, reason, self._text_of(self._rows.line_num))


class JsonLinesReader(_LineFile):
    """Reads a JSON lines file (one JSON value per line), restartably, like CsvReader: blank
    lines are skipped, a line that does not parse or decode raises BadLine with its line
    number, and the position saved is the byte offset and line number of the next line."""

    def __init__(
        self,
        path,
        *,
        encoding: str = "utf-8",
        range: FileRange | Mapping | None = None,
        name: str = "jsonl",
    ) -> None:
        self._lines_taken = 0
        super().__init__(path, encoding=encoding, range=range, name=name)

    def _source_changed(self) -> None:
        self._lines_taken = 0

    def _taken(self) -> int:
        return self._lines_taken

    def read(self) -> Any | None:
        loads = json.loads
        while self._lines_taken < self._stop:
            text = next(self._source, None)
            if text is None:
                return None
            taken = self._lines_taken = self._lines_taken + 1
            line = self._source_line + taken
            if self._undecodable and self._took_undecodable(taken - 1, taken):
                raise BadLine(line, f"bytes that are not valid {self.encoding}", text)
            if not text.strip():
                continue
            try:
                return loads(text)
            except ValueError as error:
                raise BadLine(line, f"invalid JSON: {error}", text) from None
        return None


# --- databases ----------------------------------------------------------------------------------


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
        self._connection = self._cursor = None
        self._columns: list[str] = []
        self._key_index = -1
        self._rows: Iterator[tuple] = iter(())
        self._last: Any = None
        self._count = 0

    def open(self, context: dict) -> None:
        self._last, self._count = context.get(self._key_state), context.get(self._count_state, 0)
        self._connection = connections.create_connection(self.using)
        try:
            self._execute()
        except BaseException:
            self.close()  # the engine closes only streams that opened
            raise

    def _execute(self) -> None:
        connection = self._connection
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
            self._skip(self._count)

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

    def _skip(self, count: int) -> None:
        if self._connection.vendor == "postgresql":
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


# --- HTTP ---------------------------------------------------------------------------------------


class HttpReadError(Exception):
    """A page could not be read: an error status, a body that is not the JSON expected."""


def _json_path(document: Any, path: str) -> Any:
    """document["a"]["b"] for "a.b" (list indexes as numbers); "" is the document itself."""
    value = document
    for part in path.split(".") if path else ():
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return None
    return value


def _with_query(url: str, **params: Any) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += [(k, str(v)) for k, v in params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


class HttpJsonReader:
    """Reads the items of a paginated JSON API through the hardened HTTP client (SSRF checks on
    every request, a deadline, a size cap), restartably by page.

    url: the first page.
    items_path: where the page's list of items is in the body, dotted ("data.items"); "" when
        the body is the list.
    Pagination, one of:
    - page_param="page": pages are numbered from `first_page` in that query parameter; the
      last page is an empty one, or one shorter than `page_size` when that is given.
    - next_path="links.next": the body holds the next page's URL (relative URLs are resolved
      against the page's); the last page has none (absent, null or "").
    - neither: a single page.
    page_size, size_param: send page_size in the query parameter size_param ("per_page").
    headers: sent with every request (authorisation...).
    retry: a RetryPolicy for fetching a page (e.g. on HttpReadError and
        requests.ConnectionError); by default a failed fetch fails the read.

    read() returns the next item, or None after the last page. The URL of the page being read
    and the count of its items already returned are saved; a restart fetches that page again
    and skips those items. The API must serve the same pages again for that to be exact (a
    stable sort; a cursor or page number, not a moving window over changing data).
    """

    def __init__(
        self,
        url: str,
        *,
        items_path: str = "",
        page_param: str | None = None,
        first_page: int = 1,
        next_path: str | None = None,
        page_size: int | None = None,
        size_param: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_seconds: float = 30.0,
        retry: RetryPolicy = NO_RETRY,
        name: str = "http",
    ) -> None:
        if page_param and next_path:
            raise ValueError("paginate by page_param or by next_path, not both")
        if size_param and not page_size:
            raise ValueError("size_param needs a page_size to send")
        self.items_path, self.page_param, self.next_path = items_path, page_param, next_path
        self.first_page, self.page_size, self.size_param = first_page, page_size, size_param
        self.headers = {"Accept": "application/json", **(headers or {})}
        self.timeout_seconds, self.retry = timeout_seconds, retry
        self._url_state, self._index_state = f"{name}.page_url", f"{name}.index"
        self._first_url = self._page_url(url, first_page)
        self._url: str | None = self._first_url
        self._items: list = []
        self._index = 0
        self._next: str | None = None
        self._fetched = False

    def _page_url(self, url: str, page: int | None) -> str:
        params: dict[str, Any] = {}
        if self.page_param and page is not None:
            params[self.page_param] = page
        if self.size_param:
            params[self.size_param] = self.page_size
        return _with_query(url, **params) if params else url

    def open(self, context: dict) -> None:
        self._url = context.get(self._url_state, self._first_url)
        self._index = context.get(self._index_state, 0)
        self._fetched, self._items, self._next = False, [], None

    def update(self, context: dict) -> None:
        context[self._url_state] = self._url
        context[self._index_state] = self._index

    def close(self) -> None:
        self._items = []

    def read(self) -> Any | None:
        while True:
            if self._url is None:
                return None
            if not self._fetched:
                self.retry.call(self._fetch)
            if self._index < len(self._items):
                item = self._items[self._index]
                self._index += 1
                return item
            self._url, self._index, self._fetched = self._next, 0, False

    def _fetch(self) -> None:
        response = http_call(
            method="GET", url=self._url, headers=self.headers, body=None,
            deadline=time.monotonic() + self.timeout_seconds,
        )  # fmt: skip
        if not 200 <= response.status < 300:
            raise HttpReadError(f"GET {self._url}: HTTP {response.status}: {response.text()[:200]}")
        try:
            body = json.loads(response.body)
        except ValueError as error:
            raise HttpReadError(f"GET {self._url}: the body is not JSON: {error}") from None
        items = _json_path(body, self.items_path)
        if not isinstance(items, list):
            raise HttpReadError(f"GET {self._url}: no list of items at {self.items_path!r}")
        self._items, self._fetched = items, True
        self._next = self._following(body, items)

    def _following(self, body: Any, items: list) -> str | None:
        if self.next_path:
            link = _json_path(body, self.next_path)
            return urljoin(self._url, link) if isinstance(link, str) and link else None
        if self.page_param:
            if not items or (self.page_size and len(items) < self.page_size):
                return None
            current = dict(parse_qsl(urlsplit(self._url).query)).get(self.page_param)
            return self._page_url(self._url, int(current) + 1)
        return None
