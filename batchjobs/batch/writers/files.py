"""The CSV file writer, restartable by byte offset."""

import csv
import io
import os
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import IO

from django.utils.translation import gettext


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
        self._file: IO[bytes] | None = None
        self._pending: list[bytes] = []

    def _format(self, rows) -> bytes:
        self._text.seek(0)
        self._text.truncate()
        self._csv.writerows(rows)
        return self._text.getvalue().encode(self.encoding)

    def open(self, context: dict) -> None:
        offset = context.get(self._state)
        self._pending = []
        file: IO[bytes]
        if offset is None:
            file = self._file = open(self.path, "wb")  # closed in close()
            if self.header:
                file.write(self._format([self.fieldnames]))
            return
        file = self._file = open(self.path, "r+b")  # closed in close()
        size = os.fstat(file.fileno()).st_size
        if size < offset:
            file.close()
            raise ValueError(
                gettext(
                    "%(path)s has %(size)s bytes but the checkpoint is at byte %(offset)s: "
                    "lines the step committed are missing from the file"
                )
                % {"path": self.path, "size": size, "offset": offset}
            )
        file.truncate(offset)
        file.seek(offset)

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
        file = self._file
        if file is None:
            raise RuntimeError("CsvWriter is not open: open(context) comes first")
        if self._pending:
            file.write(b"".join(self._pending))
            self._pending = []
        file.flush()
        context[self._state] = file.tell()

    def close(self) -> None:
        # Lines still pending belong to a chunk that did not commit: they are dropped.
        self._pending = []
        if self._file is not None:
            self._file.close()
            self._file = None
