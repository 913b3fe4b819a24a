"""Flat-file readers: CSV and JSON lines, read in batches of lines, restartable by byte offset,
splittable into byte ranges for partitioned steps."""

import codecs
import csv
import json
import os
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate, chain
from typing import IO, Any

from django.utils.translation import gettext

from ..listeners import ChunkListener, SkipListener

UTF8_BOM = codecs.BOM_UTF8
# How far a bad line's text is quoted in its BadLine: enough to recognise it in a report.
EXCERPT_CHARS = 200
# Flat files are read this many bytes of lines at a time: the per-line bookkeeping runs at C
# speed over a batch, and memory stays flat whatever the file's size.
LINE_BATCH_BYTES = 1 << 16
# Lines left are counted (items_remaining) this many bytes at a time.
COUNT_BLOCK_BYTES = 1 << 20


# A bad line's reason, kept in the step's context, is in the deployment's language.
def _undecodable_reason(encoding: str) -> str:
    return gettext("bytes that are not valid %(encoding)s") % {"encoding": encoding}


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
        self._file: IO[bytes] | None = None
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
        file = self._file = open(self.path, "rb")  # closed in close()
        if file.read(len(UTF8_BOM)) != UTF8_BOM:
            file.seek(0)
        self._seek(file.tell(), 0)
        self._opened()
        if self._offset_key in context:
            offset, line = context[self._offset_key], context[self._line_key]
            size = os.path.getsize(self.path)
            if offset > size:
                raise ValueError(
                    gettext(
                        "%(path)s has %(size)s bytes but the checkpoint is at byte %(offset)s: "
                        "the file was replaced or truncated since the step ran"
                    )
                    % {"path": self.path, "size": size, "offset": offset}
                )
            self._seek(offset, line)
        elif self.range.start > self.position[0]:
            self._seek(self.range.start, self.range.lines_before)

    def _opened(self) -> None:
        """Called at the start of the file, before seeking to the restart position."""

    def _open_file(self) -> IO[bytes]:
        if self._file is None:
            raise RuntimeError(f"{type(self).__name__} is not open: open(context) comes first")
        return self._file

    def _seek(self, offset: int, line: int) -> None:
        self._open_file().seek(offset)
        self._restart(offset, line)

    def items_remaining(self) -> int:
        """The lines from the next record to the end of the file (or range), counted at C
        speed on a handle of its own: the items this run will read (more than that if a
        record spans lines or lines are blank). See protocols.CountingReader."""
        count, last, left = 0, b"\n", self._end - self.position[0]
        with open(self.path, "rb") as file:
            file.seek(self.position[0])
            while left > 0 and (block := file.read(int(min(COUNT_BLOCK_BYTES, left)))):
                count += block.count(b"\n")
                last, left = block[-1:], left - len(block)
        return count + (last != b"\n")  # a last line without its line end

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
        encoding, end, file = self.encoding, self._end, self._open_file()
        while raws := file.readlines(LINE_BATCH_BYTES):
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
            raise ValueError(
                gettext("%(path)s: unreadable header row: %(error)s")
                % {"path": self.path, "error": error}
            ) from error
        if self._took_undecodable(0, self._rows.line_num):
            raise ValueError(
                gettext("%(path)s: the header row is not valid %(encoding)s")
                % {"path": self.path, "encoding": self.encoding}
            )
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
                raise self._bad_line(
                    before, gettext("malformed CSV: %(error)s") % {"error": error}
                ) from None
            if self._undecodable and self._took_undecodable(before, rows.line_num):
                raise self._bad_line(before, _undecodable_reason(self.encoding))
            if len(row) == width:  # so zip need not check the lengths again, at a cost per row
                return dict(zip(keys, row, strict=False))
            if row:  # a blank line is no record
                raise self._bad_line(
                    before,
                    gettext("expected %(width)s fields, found %(count)s")
                    % {"width": width, "count": len(row)},
                )
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
                raise BadLine(line, _undecodable_reason(self.encoding), text)
            if not text.strip():
                continue
            try:
                return loads(text)
            except ValueError as error:
                raise BadLine(
                    line, gettext("invalid JSON: %(error)s") % {"error": error}, text
                ) from None
        return None
