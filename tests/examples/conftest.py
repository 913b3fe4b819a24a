"""The examples' handler tests run handlers as the product's handler tests do: same fixtures.
The session cleanup of the test databases is requested by those tests (test_handlers.py), not
autouse here, so that tests without a database need none."""

import pytest

from tests.handlers.conftest import (  # noqa: F401
    handler_context,
    run_handler_job,
    start_handler_job,
)


@pytest.fixture(autouse=True)
def sql_jobs_may_read_the_examples_database(settings):
    """examples.concurrent_queries reads the example customers, which live on `default`:
    BATCHJOBS_SQL_DATABASES leaves batchjobs' own database out unless the operator lists it,
    as these tests do."""
    settings.BATCHJOBS_SQL_DATABASES = ["default", "warehouse"]
