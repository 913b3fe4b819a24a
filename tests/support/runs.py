"""Running an execution in this process, as a worker's task does (claim, run, record)."""

import itertools

from batchjobs.execution.runner import execution_run
from batchjobs.models import BatchLog, StepExecution
from batchjobs.models.execution import FINAL_STATUSES

# A queue no worker consumes. A job started on it in a test that commits (a transactional test)
# publishes its message there, so a worker another test left running cannot claim the run the
# test runs here. tests/conftest.py empties it when the session starts.
IN_PROCESS_QUEUE = "tests-in-process"

_task_ids = itertools.count(1)


def run_in_process(
    execution: BatchLog | int,
    *,
    worker: str = "test",
    task_id: str | None = None,
    until_ended: bool = False,
) -> BatchLog:
    """Run the execution's next attempt here and return the execution as the database has it
    afterwards (its job loaded). An execution that cannot be claimed (running, in backoff, ended)
    is left as it is, as a worker leaves it.

    until_ended: run attempts until the execution ends, failing if one is not claimed or if it
    has not ended after max_attempts; for jobs without retry backoff, whose retries are due at
    once. task_id: the Celery task id the attempt records (by default a new one each call)."""
    execution_id = execution if isinstance(execution, int) else execution.pk
    attempts = BatchLog.objects.get(pk=execution_id).attempts if until_ended else None
    while True:
        execution_run(
            execution_id=execution_id,
            worker=worker,
            task_id=task_id or f"in-process-{next(_task_ids)}",
        )
        after = BatchLog.objects.select_related("job").get(pk=execution_id)
        if not until_ended or after.status in FINAL_STATUSES:
            return after
        if after.attempts == attempts:
            raise AssertionError(f"execution {execution_id} was not claimed ({after.status})")
        if after.attempts >= after.max_attempts:
            raise AssertionError(f"execution {execution_id} still {after.status} after its last")
        attempts = after.attempts


def step_execution(execution: BatchLog, name: str, partition: str = "") -> StepExecution:
    """The record of step `name` (of one partition of it) in a batch execution."""
    return StepExecution.objects.get(execution=execution, step_name=name, partition=partition)
