"""Item writers that ship, by destination: databases (database.py: Django bulk insert/upsert,
PostgreSQL COPY), CSV files (files.py), HTTP (http.py).

A writer's write(items) runs inside the chunk's transaction on the `default` database: what it
writes there commits or rolls back with the chunk and its checkpoint. What it writes anywhere
else (another database alias, a file, a remote service) does not roll back; each writer says
how it stays correct when a chunk is written again after a rollback or a restart.
"""

# The public API: users' batch jobs import `batchjobs.batch.writers.DjangoWriter` and the like,
# so every writer, its errors and helpers are named here whichever module of the package holds
# them.
from .database import DjangoWriter, NotPostgreSQL, PostgresCopyWriter, copy_text
from .files import CsvWriter
from .http import HttpWriteError, HttpWriter

__all__ = [
    "CsvWriter", "DjangoWriter", "HttpWriteError", "HttpWriter", "NotPostgreSQL",
    "PostgresCopyWriter", "copy_text",
]  # fmt: skip
