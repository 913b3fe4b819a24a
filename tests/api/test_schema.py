"""Schemathesis against the generated OpenAPI schema: for every operation, generated requests
get no 5xx, only documented status codes and content types, and bodies that match the schema.

The application is called in-process (WSGI) inside the test's transaction, as an admin (every
operation reachable) holding a token; a few objects exist so that small ids hit real rows. The
schema is fetched when the test runs (each operation is then a subtest), not on import: collecting
the suite needs no database or Redis.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from batchjobs.models import BatchLog, BatchSchedule, ExecutionStatus, Trigger
from tests.support.factories import handler_job

# Generated cases per operation: enough to reach the error paths of each (the explicit bad-input
# tests cover each field's refusals), and the whole run (about 60 operations) stays near a
# minute: at 20 it took two, an eighth of the suite.
MAX_EXAMPLES = 10
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def token(make_user) -> str:
    # A few rows, so that generated small ids find something (1, 2, 3 are likely choices).
    job = handler_job("noop", name="schema-job")
    BatchSchedule.objects.create(job=job, kind="interval", interval_every=5)
    for status in (ExecutionStatus.QUEUED, ExecutionStatus.FAILED, ExecutionStatus.COMPLETED):
        BatchLog.objects.create(job=job, trigger=Trigger.API, status=status)
    return Token.objects.create(user=make_user("admin")).key


@pytest.fixture
def in_test_transaction():
    """Django's test client does this too: a WSGI request must not close the connection that
    holds the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def served_schema(in_test_transaction):
    """The schema as /api/schema/ serves it, loaded when the test runs rather than on import,
    so that collecting the tests needs no server."""
    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


schema = schemathesis.pytest.from_fixture("served_schema")


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
def test_api_conforms_to_its_schema(case, token, in_test_transaction):
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)
