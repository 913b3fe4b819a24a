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
