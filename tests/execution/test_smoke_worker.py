import pytest

from batchjobs.models import BatchLog, ExecutionStatus, Trigger
from batchjobs.services.executions import execution_start
from batchjobs.services.jobs import job_create
from tests.processes import wait_until

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.integration]


def test_noop_handler_runs_on_worker(worker):
    job = job_create(name="noop", kind="handler", handler_name="noop")
    execution = execution_start(job=job, trigger=Trigger.API)
    done = wait_until(
        lambda: BatchLog.objects.filter(pk=execution.pk, status=ExecutionStatus.COMPLETED).first(),
        timeout=20,
    )
    assert done.result == {"ok": True}
