"""Workers accept JSON only: a pickled message, or a handler outside the registry, runs nothing."""

import pickle
import time

import pytest
from django.conf import settings

from batchjobs.errors import InvalidInput
from batchjobs.models import BatchLog, ExecutionStatus
from batchjobs.models.clock import database_now
from batchjobs.tasks import execute
from tests.support.factories import handler_job, start
from tests.support.processes import wait_until
from tests.support.runs import run_in_process

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


class Boom:
    """Unpickling this creates `path`: a worker must never unpickle."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.path),))


@pytest.mark.integration
def test_a_pickled_message_is_refused_and_runs_nothing(worker, tmp_path):
    marker = tmp_path / "ran"
    job = handler_job("noop")
    now = database_now()
    # a queued execution with no JSON message of its own
    execution = BatchLog.objects.create(job=job, trigger="api", next_attempt_at=now,
                                        published_at=now, max_attempts=1)  # fmt: skip
    # when a message serialised with pickle arrives for it
    with execute.app.producer_or_acquire() as producer:
        producer.publish(
            pickle.dumps(((execution.pk,), {"payload": Boom(marker)}, {})),
            routing_key=settings.CELERY_TASK_DEFAULT_QUEUE,
            exchange="",
            content_type="application/x-python-serialize",
            content_encoding="binary",
            headers={
                "task": "batchjobs.execute",
                "id": "pickled-1",
                "lang": "py",
                "argsrepr": "",
                "kwargsrepr": "",
            },  # fmt: skip
        )
    worker.wait_for_log("ContentDisallowed", timeout=20)
    time.sleep(1)
    # then the execution was not touched and nothing was unpickled
    assert BatchLog.objects.get(pk=execution.pk).status == ExecutionStatus.QUEUED
    assert not marker.exists()


@pytest.mark.integration
def test_a_json_message_for_the_same_execution_runs_it(worker):
    execution = start(handler_job("noop"))
    done = wait_until(
        lambda: BatchLog.objects.filter(pk=execution.pk, status=ExecutionStatus.COMPLETED).first()
    )
    assert done.result == {"ok": True}


def test_a_handler_name_outside_the_registry_runs_nothing():
    # given a queued run of a job whose handler is not registered in this worker (the web
    # process had it, or the row was edited behind the services' back)
    job = handler_job("noop")
    type(job).objects.filter(pk=job.pk).update(handler_name="os.system")
    now = database_now()
    execution = BatchLog.objects.create(job=job, trigger="api", next_attempt_at=now,
                                        published_at=now, max_attempts=3)  # fmt: skip
    # when a worker takes it
    execution = run_in_process(execution)
    # then it fails without retry, naming the unknown handler
    assert execution.status == ExecutionStatus.FAILED
    assert "'os.system' is not registered" in execution.error
    assert execution.attempts == 1


def test_starting_a_job_whose_handler_is_gone_is_a_clear_error():
    job = handler_job("noop")
    type(job).objects.filter(pk=job.pk).update(handler_name="gone.handler")
    with pytest.raises(InvalidInput) as raised:
        start(type(job).objects.get(pk=job.pk))
    assert "gone.handler" in raised.value.field_errors["handler_name"][0]
