"""Worked examples of the database patterns batch teams ask for.

On the project's own databases (customers live in `default`, the warehouse keeps a copy in
`warehouse`, see routers.py):

- examples.customers_upsert: create, update and delete in one transaction (all or nothing).
- examples.sync_customers_to_warehouse: copy changed rows across two aliases, committing on both
  or rolling back on both.
- examples.customer_report: a read-only report across both aliases.
- examples.concurrent_queries: several read-only queries at once, one connection per thread.

The tutorial's nine handlers, on the operator's databases `sqlite`, `postgres` and `mysql`
(tutorial.py; each handler's `database`, `source`/`target` or `databases` parameter names
others):

- examples.sqlite_crud, examples.postgres_crud, examples.mysql_crud: create, read, update and
  delete in one transaction on that engine's database.
- examples.sync_sqlite_to_postgres, examples.sync_postgres_to_mysql: copy changed rows to the
  next database; both commit or both roll back.
- examples.multi_db_report: a report across the three, in transactions that refuse writes.
- examples.service_layer: a thin handler calling a service that owns the transaction.
- examples.do_work_pattern: the tutorial's do_work(params) -> result, wrapped as a handler.
- examples.concurrent_queries, without `queries`: the three databases at once.
"""

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager

from django.conf import settings
from django.db import NotSupportedError, connections, transaction
from django.db.models import F, Q
from django.utils.translation import gettext as _

from batchjobs.handlers.registry import HandlerContext, NonRetryableError, handler

from .models import ExampleCustomer, TutorialCustomer, WarehouseCustomer
from .services import CustomersNotFound, customers_deactivate
from .tutorial import (
    MYSQL,
    POSTGRES,
    SQLITE,
    VENDORS,
    customer_summary,
    customers,
    do_work,
    tutorial_database,
    unsynced,
)

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
    if connection.vendor == "mysql" and connection.in_atomic_block:
        # MySQL sets a transaction's access mode before its first statement, never during it.
        raise NotSupportedError(
            f"a read-only transaction on {using!r} (MySQL) cannot be nested in a caller's"
        )
    try:
        with transaction.atomic(using=using):
            with connection.cursor() as cursor:
                if connection.vendor in ("postgresql", "mysql"):
                    # MySQL: the transaction Django opened has run no statement yet, so this
                    # sets the access mode of the one the next statement starts.
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
            _customer, was_created = ExampleCustomer.objects.update_or_create(
                email=row["email"],
                defaults={"name": row["name"], "active": row.get("active", True)},
            )
            created += was_created
            updated += not was_created
        deleted = ExampleCustomer.objects.filter(email__in=list(delete)).delete()[0]
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
                raise RuntimeError(
                    _("failing on purpose after %(rows)d rows; nothing is kept") % {"rows": copied}
                )
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


DATABASE_PARAM = {"type": "string", "minLength": 1, "maxLength": 100}
TUTORIAL_DATABASES = [SQLITE, POSTGRES, MYSQL]


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
            "databases": {
                "type": "array",
                "minItems": 1,
                "maxItems": 32,
                "items": DATABASE_PARAM,
                "default": TUTORIAL_DATABASES,
                "description": "Without queries: count the tutorial customers on each at once.",
            },
            "max_workers": {"type": "integer", "minimum": 1, "maximum": 16},
        },
        "not": {"required": ["queries", "databases"]},
        "additionalProperties": False,
    },
)
def concurrent_queries(
    ctx: HandlerContext,
    *,
    queries: list | None = None,
    databases: list[str] = TUTORIAL_DATABASES,
    max_workers: int = 4,
) -> dict:
    """Run read-only queries side by side, each thread on its own connection: the given SQL
    (on databases of BATCHJOBS_SQL_DATABASES), or by default the tutorial's: its customers
    counted on the `sqlite`, `postgres` and `mysql` databases at once."""
    if queries is None:
        table = TutorialCustomer._meta.db_table
        queries = [
            {"database": tutorial_database(alias), "sql": f"SELECT COUNT(*) FROM {table}"}
            for alias in databases
        ]
    else:
        for query in queries:
            using = query.get("database", SOURCE)
            if using not in settings.BATCHJOBS_SQL_DATABASES:
                raise NonRetryableError(_("database %(alias)r is not allowed") % {"alias": using})

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


# --- The tutorial's handlers, on the operator's databases (tutorial.py) -----------------------


def _crud_handler(vendor: str, alias: str) -> None:
    """Register examples.<alias>_crud: create, read, update and delete tutorial customers in one
    transaction on the `vendor` database `alias` (or the one `database` names)."""

    @handler(
        f"examples.{alias}_crud",
        schema={
            "type": "object",
            "properties": {
                "database": {**DATABASE_PARAM, "default": alias},
                "upsert": {"type": "array", "items": CUSTOMER_SCHEMA},
                "delete": {"type": "array", "items": {"type": "string"}},
            },
            "additionalProperties": False,
        },
        description=(
            f"Create, read, update and delete customers in one transaction on {vendor} "
            f"(database {alias!r} by default)."
        ),
    )
    def crud(ctx: HandlerContext, *, database: str = alias, upsert=(), delete=()) -> dict:
        using = tutorial_database(database, vendor=vendor)
        created = updated = 0
        with transaction.atomic(using=using):
            for row in upsert:
                changes = {"name": row["name"], "active": row.get("active", True)}
                # Update (its version raised, so the sync handlers copy it) or else create.
                if (
                    customers(using)
                    .filter(email=row["email"])
                    .update(**changes, version=F("version") + 1)
                ):
                    updated += 1
                else:
                    customers(using).create(email=row["email"], **changes)
                    created += 1
            deleted = customers(using).filter(email__in=list(delete)).delete()[0]
            # Read back in the same transaction: what it is about to commit.
            read = [
                [c.email, c.name, c.active, c.version]
                for c in customers(using).filter(email__in=[row["email"] for row in upsert])
            ]
        return {
            "database": using,
            "created": created,
            "updated": updated,
            "deleted": deleted,
            "read": read,
        }


for _alias, _vendor in VENDORS.items():
    _crud_handler(_vendor, _alias)


def _sync_handler(source: str, target: str) -> None:
    """Register examples.sync_<source>_to_<target>: copy the tutorial customers changed on the
    `source` database to the `target` one and mark them copied; both commit or both roll back."""
    source_vendor, target_vendor = VENDORS[source], VENDORS[target]

    @handler(
        f"examples.sync_{source}_to_{target}",
        schema={
            "type": "object",
            "properties": {
                "source": {**DATABASE_PARAM, "default": source},
                "target": {**DATABASE_PARAM, "default": target},
                "batch_size": {"type": "integer", "minimum": 1, "maximum": 100000},
            },
            "additionalProperties": False,
        },
        description=(
            f"Copy changed customers from {source_vendor} to {target_vendor} (databases {source!r} "
            f"and {target!r} by default); both commit or both roll back."
        ),
    )
    def sync(
        ctx: HandlerContext, *, source: str = source, target: str = target, batch_size: int = 1000
    ) -> dict:
        # Like sync_customers_to_warehouse: the target's transaction nested in the source's, so
        # any error rolls back both, and the target commits first; a copy is an upsert keyed by
        # e-mail, so a run whose source commit were lost is made good by the next.
        source_alias = tutorial_database(source, vendor=source_vendor)
        target_alias = tutorial_database(target, vendor=target_vendor)
        copied = 0
        with transaction.atomic(using=source_alias), transaction.atomic(using=target_alias):
            changed = customers(source_alias).select_for_update().filter(unsynced())
            for row in changed.order_by("email")[:batch_size]:
                customers(target_alias).update_or_create(
                    email=row.email,
                    defaults={"name": row.name, "active": row.active, "version": row.version},
                )
                customers(source_alias).filter(pk=row.pk).update(synced_version=row.version)
                copied += 1
                ctx.progress(copied)
        return {"source": source_alias, "target": target_alias, "copied": copied}


_sync_handler(SQLITE, POSTGRES)
_sync_handler(POSTGRES, MYSQL)


@handler(
    "examples.multi_db_report",
    schema={
        "type": "object",
        "properties": {
            "databases": {
                "type": "array",
                "minItems": 1,
                "maxItems": 32,
                "items": DATABASE_PARAM,
                "default": TUTORIAL_DATABASES,
            },
        },
        "additionalProperties": False,
    },
)
def multi_db_report(ctx: HandlerContext, *, databases: list[str] = TUTORIAL_DATABASES) -> dict:
    """Report the tutorial customers across databases, each read in a transaction the database
    itself refuses to write in."""
    aliases = [tutorial_database(alias) for alias in databases]
    with ExitStack() as transactions:
        for alias in aliases:
            transactions.enter_context(read_only_transaction(alias))
        summaries = {alias: customer_summary(alias) for alias in aliases}
        emails = {alias: set(customers(alias).values_list("email", flat=True)) for alias in aliases}
    everyone = set().union(*emails.values())
    return {
        "databases": summaries,
        "missing": {alias: sorted(everyone - emails[alias]) for alias in aliases},
    }


@handler(
    "examples.service_layer",
    schema={
        "type": "object",
        "properties": {
            "database": {**DATABASE_PARAM, "default": SQLITE},
            "deactivate": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        },
        "required": ["deactivate"],
        "additionalProperties": False,
    },
)
def service_layer(ctx: HandlerContext, *, deactivate: list[str], database: str = SQLITE) -> dict:
    """Deactivate customers through the service that owns the transaction and the rules
    (services.customers_deactivate); the handler only translates parameters and errors."""
    using = tutorial_database(database)
    try:
        deactivated = customers_deactivate(using=using, emails=deactivate)
    except CustomersNotFound as missing:
        raise NonRetryableError(
            _("no customer with the e-mail %(emails)s; nothing was changed")
            % {"emails": ", ".join(missing.emails)}
        ) from missing
    return {"database": using, "deactivated": deactivated}


@handler(
    "examples.do_work_pattern",
    schema={
        "type": "object",
        "properties": {"database": {**DATABASE_PARAM, "default": SQLITE}},
        "additionalProperties": False,
    },
)
def do_work_pattern(ctx: HandlerContext, **params) -> dict:
    """The tutorial's do_work(params) -> result as a handler: the adapter checks the database
    and hands the parameters to the plain function (tutorial.do_work)."""
    tutorial_database(params.get("database", SQLITE))
    return do_work(params)
