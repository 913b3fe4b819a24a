"""The examples' handler tests run handlers as the product's handler tests do: same fixtures."""

from tests.handlers.conftest import (  # noqa: F401
    handler_context,
    in_process_queue,
    no_session_left_on_the_test_databases,
    run_handler_job,
    start_handler_job,
)
