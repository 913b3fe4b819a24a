"""The examples' handler tests run handlers as the product's handler tests do: same fixtures.
The session cleanup of the test databases is requested by those tests (test_handlers.py), not
autouse here, so that tests without a database need none."""

from tests.handlers.conftest import (  # noqa: F401
    handler_context,
    in_process_queue,
    run_handler_job,
    start_handler_job,
)
