"""What the tutorial handlers share: the databases they work on, their table, and the summary
two of them read.

The handlers work on the operator's databases, by alias: `sqlite` (SQLite under
BATCHJOBS_VAR_DIR unless BATCHJOBS_DATABASE_SQLITE_URL says otherwise), `postgres`
(BATCHJOBS_DATABASE_POSTGRES_URL) and `mysql` (BATCHJOBS_DATABASE_MYSQL_URL), or any alias a
job's `database` parameter names. Never `default`: batchjobs' own database."""

from django.db import DatabaseError, connections
from django.db.models import F, Q
from django.utils.translation import gettext as _

from batchjobs.handlers.builtin import database_is_batchjobs_own
from batchjobs.handlers.registry import NonRetryableError

from .models import TutorialCustomer

# The tutorial's three databases, and the engine (Django's vendor name) each alias is for.
SQLITE, POSTGRES, MYSQL = "sqlite", "postgres", "mysql"
VENDORS = {SQLITE: "sqlite", POSTGRES: "postgresql", MYSQL: "mysql"}


def tutorial_database(alias: str, *, vendor: str | None = None) -> str:
    """`alias`, checked for a tutorial handler: configured, not batchjobs' own database, of the
    engine `vendor` when the handler is named after one; its table created if missing, before
    the handler's transaction. NonRetryableError otherwise: another attempt would meet the same
    configuration."""
    if alias not in connections.settings:
        raise NonRetryableError(
            _("database %(alias)r is not configured: set %(variable)s")
            % {"alias": alias, "variable": f"BATCHJOBS_DATABASE_{alias.upper()}_URL"}
        )
    if database_is_batchjobs_own(alias):  # `default`, or another alias of the same database
        raise NonRetryableError(
            _("database %(alias)r is batchjobs' own database; the examples use another alias")
            % {"alias": alias}
        )
    actual = connections[alias].vendor
    if vendor is not None and actual != vendor:
        raise NonRetryableError(
            _("database %(alias)r is %(actual)s, not %(vendor)s")
            % {"alias": alias, "actual": actual, "vendor": vendor}
        )
    if not table_exists(alias):
        _table_create(alias)
    return alias


def table_exists(alias: str) -> bool:
    return TutorialCustomer._meta.db_table in connections[alias].introspection.table_names()


def _table_create(alias: str) -> None:
    """Create the table, outside any transaction: MySQL commits a transaction at a CREATE TABLE,
    and SQLite's schema editor refuses to run inside one."""
    try:
        with connections[alias].schema_editor() as editor:
            editor.create_model(TutorialCustomer)
    except DatabaseError:
        if not table_exists(alias):  # not another run creating it at the same moment
            raise


def customers(alias: str):
    return TutorialCustomer.objects.using(alias)


def unsynced() -> Q:
    """The rows changed since they were last copied to the next database."""
    return Q(synced_version__isnull=True) | ~Q(synced_version=F("version"))


def customer_summary(alias: str) -> dict:
    """Counts of the customers on `alias`."""
    rows = customers(alias)
    return {
        "customers": rows.count(),
        "active": rows.filter(active=True).count(),
        "unsynced": rows.filter(unsynced()).count(),
    }


def do_work(params: dict) -> dict:
    """The tutorial's unit of work, do_work(params) -> result: parameters in, result out,
    knowing nothing of jobs, attempts or workers (a plain function, tested and reused as one).
    Here: the summary of the customers on params["database"]."""
    alias = params.get("database", SQLITE)
    return {"database": alias, **customer_summary(alias)}
