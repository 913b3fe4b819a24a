"""The console's execution list reads indexes, not the whole table (migration 0017): its order
(on every database), and on PostgreSQL the search in error text, whose trigram indexes must
match the SQL Django writes for icontains, or PostgreSQL would never use them."""

import pytest
from django.db import connection, transaction

from batchjobs.models import BatchLog

pytestmark = pytest.mark.django_db


def plan(queryset) -> str:
    """The database's plan for `queryset`. On PostgreSQL with sequential scans priced out: the
    few rows of a test would otherwise make a scan the cheaper plan whatever the indexes."""
    sql, params = queryset.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            return "\n".join(str(row[-1]) for row in cursor.fetchall())
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.fixture
def postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("the plan and the trigram indexes are PostgreSQL's")


def test_the_newest_executions_are_read_from_the_recent_index():
    # when: a page of the list, in the model's order (on PostgreSQL and SQLite alike)
    shown = plan(BatchLog.objects.order_by("-created_at", "-id")[:100])

    # then: read in order from the index, not sorted (PostgreSQL's Sort, SQLite's temp B-tree)
    assert "execution_recent_idx" in shown, shown
    assert "Sort" not in shown and "TEMP B-TREE" not in shown, shown


@pytest.mark.parametrize(
    ("field", "index"),
    [("error", "execution_error_trgm_idx"), ("worker", "execution_worker_trgm_idx")],
)
def test_a_search_in_text_reads_the_trigram_index(postgresql, field, index):
    # when: what the admin's search writes for a search field (icontains), as its count of
    # matches reads it (unordered)
    matches = BatchLog.objects.filter(**{f"{field}__icontains": "DeadlockDetected"}).order_by()
    shown = plan(matches)

    # then
    assert index in shown
