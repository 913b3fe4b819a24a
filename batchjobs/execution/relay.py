"""The relay: housekeeping that sends the messages of executions that are due and that no
worker holds (DESIGN.md §4, invariant 4). Beat runs it after reaping lost attempts."""

import logging

from django.conf import settings

from .lifecycle import (
    executions_due_for_publish,
    executions_set_aside_unsent,
    executions_unclaimed_queues,
    relay_cutoff,
)
from .publish import broker_holdings, executions_publish

logger = logging.getLogger(__name__)


def executions_relay() -> int:
    """Send the messages that are due: retries after their backoff, runs an overlap held back,
    and runs whose message is lost (DESIGN.md §4, invariant 4): unclaimed after the relay
    delay, and no longer held by the broker, in a queue or by a worker (Redis restarted empty,
    a message deleted), however long the queue. The broker is read first: a message a worker
    takes meanwhile is claimed before the rows are read, so it is not mistaken for lost.

    They go ahead of the backlog, each being overdue. An execution whose route Celery or Redis
    refuses is set aside, and the others are sent in the same pass; a broker outage fails the
    pass, and the next one sends them. Returns how many were sent."""
    # One cutoff for the pass: whatever it counts as stale was sent before the broker is read.
    sent_before = relay_cutoff()
    held = broker_holdings(
        queues=executions_unclaimed_queues(sent_before=sent_before),
        taken_within_seconds=settings.BATCHJOBS_RELAY_AFTER_SECONDS,
    )
    due = executions_due_for_publish(
        backlogged_queues=held.unread_queues,
        held_by_broker=held.execution_ids,
        sent_before=sent_before,
    )
    if not due:
        return 0
    refused = executions_publish(due, ahead_of_backlog=True)
    if refused:
        logger.warning("relay: setting aside %d executions it cannot send", len(refused))
        executions_set_aside_unsent(errors=refused)
    return len(due) - len(refused)
