"""Indexes for the console's execution list on a large table (bench/console_pages.py).

- execution_recent_idx: the list's order (newest first, the model's ordering) read from an
  index; without it each page of the list sorted the whole table (133 ms at 100,000 rows,
  0.5 ms with it).
- On PostgreSQL, trigram indexes (pg_trgm) on UPPER(error) and UPPER(worker): what Django's
  icontains compares, so that a search in error text reads the index instead of every error
  (count of matches at 100,000 rows: 194 ms by a scan, 21 ms through the indexes). Where the
  database user may not create the extension, the indexes are left out and search scans.
"""

import sys

from django.db import migrations, models, transaction

TRIGRAM_INDEXES = {
    "execution_error_trgm_idx": "error",
    "execution_worker_trgm_idx": "worker",
}


def create_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from django.db import DatabaseError

    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as error:
        print(
            f"\n  pg_trgm could not be created ({error}); search in error text scans the table",
            file=sys.stderr,
        )
        return
    for name, column in TRIGRAM_INDEXES.items():
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{name}" ON "batchjobs_batchlog" '
            f'USING gin (UPPER("{column}") gin_trgm_ops)'
        )


def drop_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in TRIGRAM_INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):

    dependencies = [
        ('batchjobs', '0016_tags_and_attempt_log'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='batchlog',
            index=models.Index(fields=['-created_at', '-id'], name='execution_recent_idx'),
        ),
        migrations.RunPython(create_trigram_indexes, drop_trigram_indexes),
    ]
