"""Thin Celery tasks: take an id, call one function."""

import os

from celery import shared_task


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
