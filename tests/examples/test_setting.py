"""BATCHJOBS_EXAMPLES decides whether the examples are in the install at all: a production
install (off, the default) has no example app, tables, handlers, jobs, URL or second database."""

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from tests.support.processes import ROOT

REPORT = """
import json
from django.apps import apps
from django.conf import settings
from django.urls import NoReverseMatch, reverse
from batchjobs.batch import batch_job_names
from batchjobs.handlers.registry import handler_names

try:
    demo_ping = reverse("demo-ping")
except NoReverseMatch:
    demo_ping = None
print(json.dumps({
    "installed": apps.is_installed("batchjobs_examples"),
    "databases": sorted(settings.DATABASES),
    "routers": settings.DATABASE_ROUTERS,
    "sql_databases": settings.BATCHJOBS_SQL_DATABASES,
    "models": sorted(m._meta.label for m in apps.get_models() if "Customer" in m.__name__),
    "example_handlers": [n for n in handler_names() if n.startswith("examples.")],
    "example_jobs": [n for n in batch_job_names() if n.startswith("examples.")],
    "demo_ping": demo_ping,
}))
"""


def settings_process(examples: str | None, *command: str, **env: str):
    """Run manage.py `command` with the base settings and this environment (less the database
    and examples variables of the test run), in a process of its own: settings are read when
    they load."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("BATCHJOBS_EXAMPLES", "WAREHOUSE_DATABASE_URL", "BATCHJOBS_SQL_DATABASES")
        and not key.startswith("BATCHJOBS_DATABASE_")
    }
    environment.update(DJANGO_SETTINGS_MODULE="config.settings.base", **env)
    if examples is not None:
        environment["BATCHJOBS_EXAMPLES"] = examples
    return subprocess.run(
        [sys.executable, "manage.py", *command],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def install(examples: str | None, **env: str) -> dict:
    """What the base settings make of the environment."""
    done = settings_process(examples, "shell", "--no-imports", "-c", REPORT, **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("examples", [None, "false"])
def test_a_production_install_has_nothing_of_the_examples(examples):
    found = install(examples)
    # the sql handler's allowed aliases leave out the warehouse it does not have
    assert "warehouse" not in found.pop("sql_databases")
    assert found == {
        "installed": False,
        "databases": ["default"],
        "routers": ["config.settings.base.OperatorDatabasesRouter"],
        "models": [],
        "example_handlers": [],
        "example_jobs": [],
        "demo_ping": None,
    }


def test_a_production_install_may_have_a_warehouse_database_for_the_sql_handler(tmp_path):
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite3'}"
    found = install("false", WAREHOUSE_DATABASE_URL=url)
    assert (found["installed"], found["databases"]) == (False, ["default", "warehouse"])
    assert "warehouse" in found["sql_databases"]


def test_the_examples_bring_their_app_database_router_handlers_jobs_and_url():
    found = install("true")
    assert found["installed"] is True
    assert found["databases"] == ["default", "sqlite", "warehouse"]
    assert found["routers"] == [
        "batchjobs_examples.routers.WarehouseRouter",
        "config.settings.base.OperatorDatabasesRouter",
    ]
    assert found["models"] == [
        "batchjobs_examples.ExampleCustomer",
        "batchjobs_examples.TutorialCustomer",
        "batchjobs_examples.WarehouseCustomer",
    ]
    assert found["example_handlers"] == [
        "examples.concurrent_queries",
        "examples.customer_report",
        "examples.customers_upsert",
        "examples.do_work_pattern",
        "examples.multi_db_report",
        "examples.mysql_crud",
        "examples.postgres_crud",
        "examples.service_layer",
        "examples.sqlite_crud",
        "examples.sync_customers_to_warehouse",
        "examples.sync_postgres_to_mysql",
        "examples.sync_sqlite_to_postgres",
    ]
    assert found["example_jobs"] == [
        "examples.csv_import",
        "examples.csv_import_partitioned",
        "examples.db_migration",
    ]
    assert found["demo_ping"] == "/demo/ping"


def test_any_number_of_extra_databases_from_the_environment(tmp_path):
    found = install(
        "false",
        BATCHJOBS_DATABASE_MART_URL=f"sqlite:///{tmp_path / 'mart.sqlite3'}",
        BATCHJOBS_DATABASE_SALES_EU_URL=f"sqlite:///{tmp_path / 'sales.sqlite3'}",
        BATCHJOBS_DATABASE_EMPTY_URL="",  # an empty variable sets nothing
    )
    assert found["databases"] == ["default", "mart", "sales_eu"]


@pytest.mark.parametrize(
    ("variable", "url", "message"),
    [
        ("BATCHJOBS_DATABASE_MART_URL", "mysq://root@127.0.0.1/mart", "is not a database URL"),
        ("BATCHJOBS_DATABASE_MART_URL", "postgres://h:port/x", "is not a database URL"),
        ("BATCHJOBS_DATABASE_MART_URL", "mysql://root@127.0.0.1:3306/", "is not a database URL"),
        ("WAREHOUSE_DATABASE_URL", "warehouse", "is not a database URL"),
        ("BATCHJOBS_DATABASE_DEFAULT_URL", "sqlite:////tmp/x.sqlite3", "set by DATABASE_URL"),
        ("DATABASE_URL", "mysql://root@127.0.0.1:3306/test", "MySQL and MariaDB serve as extra"),
    ],
)
def test_a_bad_database_url_fails_start_up_naming_its_variable(variable, url, message):
    done = settings_process("false", "check", **{variable: url})

    assert done.returncode != 0
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith(f"django.core.exceptions.ImproperlyConfigured: {variable} ")
    assert message in error
    assert "h:port" not in error  # the URL (a password, maybe) is not repeated


def test_the_warehouse_set_twice_differently_fails_start_up(tmp_path):
    done = settings_process(
        "false",
        "check",
        WAREHOUSE_DATABASE_URL=f"sqlite:///{tmp_path / 'a.sqlite3'}",
        BATCHJOBS_DATABASE_WAREHOUSE_URL=f"sqlite:///{tmp_path / 'b.sqlite3'}",
    )

    assert done.returncode != 0
    assert "WAREHOUSE_DATABASE_URL and BATCHJOBS_DATABASE_WAREHOUSE_URL" in done.stderr


@pytest.mark.parametrize("examples", ["false", "true"])
def test_migrate_leaves_an_operators_database_without_tables(tmp_path, examples):
    # given: an extra database, and batchjobs' own on a file of this test
    mart = tmp_path / "mart.sqlite3"
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'own.sqlite3'}",
        "BATCHJOBS_DATABASE_MART_URL": f"sqlite:///{mart}",
    }

    # when: someone migrates it
    done = settings_process(examples, "migrate", "--database", "mart", "--noinput", **env)

    # then: nothing of batchjobs (or of the examples) is there, only Django's record of it
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(mart) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert tables - {"sqlite_sequence"} == {"django_migrations"}
