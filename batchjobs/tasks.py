"""Thin Celery tasks: take an id, call one function; and the worker's presence step."""

import logging
import os
import threading

from celery import bootsteps, current_app, shared_task
from django.conf import settings

logger = logging.getLogger(__name__)


@shared_task(name="batchjobs.execute", bind=True, ignore_result=True, acks_late=True)
def execute(self, execution_id: int) -> None:
    from batchjobs.execution.runner import execution_run

    execution_run(
        execution_id=execution_id,
        worker=f"{self.request.hostname}:{os.getpid()}",
        task_id=self.request.id or "",
    )


@shared_task(name="batchjobs.execute_partition", ignore_result=True, acks_late=True)
def execute_partition(execution_id: int, step_name: str) -> None:
    from batchjobs.execution.batch_job import partition_work

    partition_work(execution_id=execution_id, step_name=step_name)


@shared_task(name="batchjobs.notification_send", ignore_result=True, acks_late=True)
def notification_send(sent_id: int) -> None:
    from batchjobs.services.notifications import notification_deliver

    notification_deliver(sent_id=sent_id)


@shared_task(name="batchjobs.notifications_check_missed", ignore_result=False)
def check_missed_runs() -> dict:
    from batchjobs.services.notifications import (
        notifications_check_missed,
        notifications_relay_pending,
    )

    # A row whose check raised is left out and named here, in the task's stored result.
    errors: list[str] = []
    missed = notifications_check_missed(errors=errors)
    return {"missed": len(missed), "relayed": notifications_relay_pending(), "errors": errors}


@shared_task(name="batchjobs.executions_purge_expired", ignore_result=False)
def purge_expired_executions() -> dict:
    from batchjobs.execution.retention import executions_purge_expired

    return {"deleted": executions_purge_expired()}


@shared_task(name="batchjobs.backfills_top_up", ignore_result=False)
def backfills_top_up() -> dict:
    from batchjobs.scheduling.backfill import backfills_top_up as top_up

    # A backfill whose top-up raised is passed and named here, in the task's stored result.
    errors: list[str] = []
    return {"created": top_up(errors=errors), "errors": errors}


class WorkerPresence(bootsteps.StartStopStep):
    """Announces the queues this worker consumes, with its pool and concurrency, every
    BATCHJOBS_WORKER_PRESENCE_SECONDS (selectors/workers.py reads it), and withdraws it when
    the worker stops consuming. A consumer step: started again, with the worker's timer, after
    the broker connection is re-established (Celery clears the timer when it is lost)."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent, **kwargs) -> None:
        super().__init__(parent, **kwargs)
        self.timer_entry = None
        # An announcement in flight when the worker stops (the timer runs in a greenlet or a
        # thread of its own with some pools) must not land after the withdrawal.
        self.lock = threading.Lock()
        self.closed = False

    def start(self, consumer) -> None:
        self.closed = False
        self.announce(consumer)
        self.timer_entry = consumer.timer.call_repeatedly(
            settings.BATCHJOBS_WORKER_PRESENCE_SECONDS, self.announce, (consumer,), priority=10
        )

    def stop(self, consumer) -> None:
        """Connection lost, or the worker stopping: no more announcements."""
        if self.timer_entry is not None:
            self.timer_entry.cancel()
            self.timer_entry = None

    def close(self, consumer) -> None:
        """Only when the worker stops (a lost connection restarts the steps without closing):
        its queues stop counting now, not after the presence timeout."""
        from batchjobs.selectors.workers import presence_store_errors
        from batchjobs.services.workers import worker_presence_withdraw

        self.stop(consumer)
        with self.lock:
            self.closed = True
            try:
                worker_presence_withdraw(worker=consumer.hostname)
            except presence_store_errors() as exc:
                logger.warning("worker presence not withdrawn (it times out instead): %s", exc)

    def announce(self, consumer) -> None:
        from batchjobs.selectors.workers import presence_store_errors
        from batchjobs.services.workers import worker_presence_announce

        task_consumer = consumer.task_consumer
        queues = (
            [queue.name for queue in task_consumer.queues]
            if task_consumer is not None
            else list(consumer.app.amqp.queues.consume_from)
        )
        with self.lock:
            if self.closed:
                return
            try:
                worker_presence_announce(
                    worker=consumer.hostname,
                    queues=queues,
                    pool=type(consumer.pool).__module__.rsplit(".", 1)[-1],
                    concurrency=consumer.controller.concurrency,
                    pid=os.getpid(),
                )
            except presence_store_errors() as exc:  # the broker is away; the consumer says so
                logger.warning("worker presence not announced: %s", exc)


# Read when a worker builds its consumer, after it imported this module (autodiscovery).
current_app.steps["consumer"].add(WorkerPresence)
