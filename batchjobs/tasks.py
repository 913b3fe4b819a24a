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
