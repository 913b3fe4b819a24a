"""Worked examples of the database patterns batch teams ask for, on the project's own databases:
customers live in `default`, the warehouse keeps a copy in `warehouse` (see routers.py).

- examples.customers_upsert: create, update and delete in one transaction (all or nothing).
- examples.sync_customers_to_warehouse: copy changed rows across two aliases, committing on both
  or rolling back on both.
- examples.customer_report: a read-only report across both aliases.
- examples.concurrent_queries: several read-only queries at once, one connection per thread.
"""

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from django.conf import settings
from django.db import connections, transaction
from django.db.models import F, Q

from batchjobs.handlers.registry import HandlerContext, NonRetryableError, handler

from .models import ExampleCustomer, WarehouseCustomer

SOURCE, WAREHOUSE = "default", "warehouse"

CUSTOMER_SCHEMA = {
    "type": "object",
    "properties": {
        "email": {
            "type": "string",
            "maxLength": 254,  # the column's length
            "pattern": "^[^@\\s]+@[^@\\s]+$",
            # jsonschema's $ also matches before a final newline: refuse any whitespace
            "not": {"pattern": "\\s"},
        },
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "active": {"type": "boolean"},
    },
    "required": ["email", "name"],
    "additionalProperties": False,
}


@contextmanager
def read_only_transaction(using: str) -> Iterator[None]:
    """A transaction the database itself refuses to write in, so a report cannot change data."""
    connection = connections[using]
    try:
        with transaction.atomic(using=using):
            with connection.cursor() as cursor:
                if connection.vendor == "postgresql":
                    cursor.execute("SET TRANSACTION READ ONLY")
                elif connection.vendor == "sqlite":
                    cursor.execute("PRAGMA query_only = ON")
            yield
    finally:
        # After the block: inside it, an error would forbid this very statement.
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA query_only = OFF")


@handler(
    "examples.customers_upsert",
    schema={
        "type": "object",
        "properties": {
            "upsert": {"type": "array", "items": CUSTOMER_SCHEMA},
            "delete": {"type": "array", "items": {"type": "string"}},
        },
        "additionalProperties": False,
    },
)
def customers_upsert(ctx: HandlerContext, *, upsert=(), delete=()) -> dict:
    """Create or update the given customers and delete the listed e-mails, in one transaction."""
    created = updated = 0
    with transaction.atomic(using=SOURCE):
        for row in upsert:
            _, was_created = ExampleCustomer.objects.update_or_create(
                email=row["email"],
                defaults={"name": row["name"], "active": row.get("active", True)},
            )
            created += was_created
            updated += not was_created
        deleted, _ = ExampleCustomer.objects.filter(email__in=list(delete)).delete()
    return {"created": created, "updated": updated, "deleted": deleted}


@handler(
    "examples.sync_customers_to_warehouse",
    schema={
        "type": "object",
        "properties": {
            "batch_size": {"type": "integer", "minimum": 1, "maximum": 100000},
            "fail_after_rows": {
                "type": "integer",
                "minimum": 0,
                "description": "Raise after copying this many rows (to see both sides roll back).",
            },
        },
        "additionalProperties": False,
    },
)
def sync_customers_to_warehouse(
    ctx: HandlerContext, *, batch_size: int = 1000, fail_after_rows: int | None = None
) -> dict:
    """Copy customers changed since their last sync into the warehouse and mark them synced.

    Both aliases are written inside nested transactions: any error rolls back both. The two
    commits are not atomic with each other (that needs two-phase commit); the warehouse commits
    first, and the copy is an upsert keyed by e-mail, so if the source commit were lost the next
    run would copy the same rows again and converge.
    """
    copied = 0
    with transaction.atomic(using=SOURCE), transaction.atomic(using=WAREHOUSE):
        changed = ExampleCustomer.objects.select_for_update().filter(
            Q(synced_at__isnull=True) | ~Q(synced_at=F("updated_at"))
        )
        for customer in changed.order_by("pk")[:batch_size]:
            if fail_after_rows is not None and copied >= fail_after_rows:
                raise RuntimeError(f"failing on purpose after {copied} rows; nothing is kept")
            WarehouseCustomer.objects.update_or_create(
                email=customer.email,
                defaults={
                    "name": customer.name,
                    "active": customer.active,
                    "source_updated_at": customer.updated_at,
                },
            )
            # synced_at records the version copied (its updated_at), not the clock: an edit
            # committed while this ran carries another updated_at, so the next sync copies it.
            # update(), not save(): save() would bump updated_at.
            ExampleCustomer.objects.filter(pk=customer.pk).update(synced_at=customer.updated_at)
            copied += 1
            ctx.progress(copied)
    return {"copied": copied}


@handler(
    "examples.customer_report",
    schema={"type": "object", "additionalProperties": False},
)
def customer_report(ctx: HandlerContext) -> dict:
    """Compare the source and the warehouse without writing to either."""
    with read_only_transaction(SOURCE), read_only_transaction(WAREHOUSE):
        source = {c.email: c for c in ExampleCustomer.objects.all()}
        copies = {c.email: c for c in WarehouseCustomer.objects.all()}
    stale = sorted(
        email
        for email, copy in copies.items()
        if email in source and copy.source_updated_at < source[email].updated_at
    )
    return {
        "source_customers": len(source),
        "source_active": sum(c.active for c in source.values()),
        "warehouse_customers": len(copies),
        "missing_in_warehouse": sorted(set(source) - set(copies)),
        "gone_from_source": sorted(set(copies) - set(source)),
        "stale_in_warehouse": stale,
    }


@handler(
    "examples.concurrent_queries",
    schema={
        "type": "object",
        "properties": {
            "queries": {
                "type": "array",
                "minItems": 1,
                "maxItems": 32,
                "items": {
                    "type": "object",
                    "properties": {
                        "database": {"type": "string"},
                        "sql": {"type": "string", "minLength": 1},
                    },
                    "required": ["sql"],
                    "additionalProperties": False,
                },
            },
            "max_workers": {"type": "integer", "minimum": 1, "maximum": 16},
        },
        "required": ["queries"],
        "additionalProperties": False,
    },
)
def concurrent_queries(ctx: HandlerContext, *, queries: list, max_workers: int = 4) -> dict:
    """Run read-only queries side by side, each thread on its own connection."""
    for query in queries:
        using = query.get("database", SOURCE)
        if using not in settings.BATCHJOBS_SQL_DATABASES:
            raise NonRetryableError(f"database {using!r} is not allowed")

    def run(query: dict) -> dict:
        using = query.get("database", SOURCE)
        started = time.monotonic()
        try:
            with read_only_transaction(using), connections[using].cursor() as cursor:
                cursor.execute(query["sql"])
                rows = [list(row) for row in cursor.fetchmany(100)] if cursor.description else []
        finally:
            connections[using].close()  # a pool thread's connection is not reused by Django
        return {"database": using, "rows": rows, "seconds": round(time.monotonic() - started, 4)}

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        results = list(pool.map(run, queries))
    return {"results": results, "seconds": round(time.monotonic() - started, 4)}
