"""BATCHJOBS_EXAMPLES decides whether the examples are in the install at all: a production
install (off, the default) has no example app, tables, handlers, jobs, URL or second database."""

import json
import os
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


def install(examples: str | None, **env: str) -> dict:
    """What the base settings make of the environment, in a process of their own (the setting
    is read when the settings load)."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("BATCHJOBS_EXAMPLES", "WAREHOUSE_DATABASE_URL", "BATCHJOBS_SQL_DATABASES")
    }
    environment.update(DJANGO_SETTINGS_MODULE="config.settings.base", **env)
    if examples is not None:
        environment["BATCHJOBS_EXAMPLES"] = examples
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", REPORT],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
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
        "routers": [],
        "models": [],
        "example_handlers": [],
        "example_jobs": [],
        "demo_ping": None,
    }


def test_a_production_install_may_have_a_warehouse_database_for_the_sql_handler(tmp_path):
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite3'}"
    found = install("false", WAREHOUSE_DATABASE_URL=url)
    assert (found["installed"], found["databases"], found["routers"]) == (
        False,
        ["default", "warehouse"],
        [],
    )
    assert "warehouse" in found["sql_databases"]


def test_the_examples_bring_their_app_database_router_handlers_jobs_and_url():
    found = install("true")
    assert found["installed"] is True
    assert found["databases"] == ["default", "warehouse"]
    assert found["routers"] == ["batchjobs_examples.routers.WarehouseRouter"]
    assert found["models"] == [
        "batchjobs_examples.ExampleCustomer",
        "batchjobs_examples.WarehouseCustomer",
    ]
    assert found["example_handlers"] == [
        "examples.concurrent_queries",
        "examples.customer_report",
        "examples.customers_upsert",
        "examples.sync_customers_to_warehouse",
    ]
    assert found["example_jobs"] == [
        "examples.csv_import",
        "examples.csv_import_partitioned",
        "examples.db_migration",
    ]
    assert found["demo_ping"] == "/demo/ping"
