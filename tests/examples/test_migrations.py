"""batchjobs_examples' 0001 adopts the example tables an older installation has (batchjobs' own
0001 created them) and creates them on a fresh one, each on the alias the router gives it."""

import pytest
from django.db import connections
from django.db.migrations.executor import MigrationExecutor

from batchjobs_examples.models import ExampleCustomer, WarehouseCustomer

INITIAL = ("batchjobs_examples", "0001_initial")
pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "warehouse"])


def migrate(alias: str, target: tuple[str, str | None]) -> None:
    executor = MigrationExecutor(connections[alias])
    executor.migrate([target])


def tables(alias: str) -> set[str]:
    return set(connections[alias].introspection.table_names())


def unapply_examples(alias: str) -> None:
    """Back to before the examples app, as an installation made before it is: the tables stay
    (the reverse of 0001 drops nothing, batchjobs' 0001 owned them)."""
    migrate(alias, ("batchjobs_examples", None))


def test_an_existing_installation_keeps_its_example_rows():
    # given an installation from before the split, with rows in both example tables
    for alias in ("default", "warehouse"):
        unapply_examples(alias)
    with connections["default"].cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ExampleCustomer._meta.db_table} (email, name, active, updated_at) "
            "VALUES ('kept@example.com', 'Kept', true, CURRENT_TIMESTAMP)"
        )
    with connections["warehouse"].cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {WarehouseCustomer._meta.db_table} "
            "(email, name, active, source_updated_at) "
            "VALUES ('copy@example.com', 'Copy', true, CURRENT_TIMESTAMP)"
        )

    # when the examples app's migration runs
    for alias in ("default", "warehouse"):
        migrate(alias, INITIAL)

    # then it adopted the tables with their rows
    assert list(ExampleCustomer.objects.values_list("email", "name")) == [
        ("kept@example.com", "Kept")
    ]
    assert list(WarehouseCustomer.objects.values_list("email", flat=True)) == ["copy@example.com"]


def test_a_fresh_installation_gets_each_table_on_its_own_database():
    # given no example table anywhere
    for alias in ("default", "warehouse"):
        unapply_examples(alias)
        with connections[alias].schema_editor() as editor:
            for model in (ExampleCustomer, WarehouseCustomer):
                if model._meta.db_table in tables(alias):
                    editor.delete_model(model)

    # when the examples app's migration runs on both
    for alias in ("default", "warehouse"):
        migrate(alias, INITIAL)

    # then the customers are on default and their copies on the warehouse, nowhere else
    assert ExampleCustomer._meta.db_table in tables("default")
    assert WarehouseCustomer._meta.db_table not in tables("default")
    assert WarehouseCustomer._meta.db_table in tables("warehouse")
    assert ExampleCustomer._meta.db_table not in tables("warehouse")
    ExampleCustomer.objects.create(email="new@example.com", name="New")
    assert ExampleCustomer.objects.count() == 1
