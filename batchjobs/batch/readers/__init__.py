"""Item readers that ship, by source: flat files (files.py: CSV, JSON lines), databases
(database.py: Django querysets, raw SQL), paginated HTTP (http.py).

Every reader here is an ItemStream: `open(context)` seeks to the position saved in the step's
execution context, `update(context)` saves the position reached, and the engine commits that
checkpoint with the chunk's writes. A restarted step therefore resumes exactly after the last
committed chunk. Readers are built by the step's reader factory, once per step execution::

    chunk_step("load", reader=lambda ctx: CsvReader(ctx.params["file"]), writer=..., ...)

Each reader keeps its position under keys prefixed by its `name` ("csv.offset", ...), so two
readers in one job never share a key; give a reader a name of its own only if a step's context
holds the keys of another stream of the same kind.
"""

# The public API: users' batch jobs import `batchjobs.batch.readers.CsvReader` and the like, so
# every reader, its errors and helpers are named here whichever module of the package holds them.
from .database import QuerysetReader, SqlCursorReader
from .files import BadLine, BadLineReport, CsvReader, FileRange, JsonLinesReader, file_ranges
from .http import HttpJsonReader, HttpReadError

__all__ = [
    "BadLine", "BadLineReport", "CsvReader", "FileRange", "HttpJsonReader", "HttpReadError",
    "JsonLinesReader", "QuerysetReader", "SqlCursorReader", "file_ranges",
]  # fmt: skip
