import json

import pytest
from django.core.management import call_command

from batchjobs.models import BatchLog, ExecutionStatus, Trigger
from tests.support.factories import handler_job


@pytest.mark.django_db
def test_run_queues_an_execution_with_params(capsys):
    job = handler_job("sleep", params={"seconds": 1})
    call_command("batchjobs", "run", job.name, "--param", "seconds=0.2", "--json")
    output = json.loads(capsys.readouterr().out)
    execution = BatchLog.objects.get(pk=output["id"])
    assert execution.trigger == Trigger.CLI
    assert execution.params == {"seconds": 0.2}
    assert output["status"] == ExecutionStatus.QUEUED


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-job"], "no job named 'no-such-job'"),
        (["{job}", "--param", "seconds=-1"], "params"),
        (["{job}", "--param", "novalue"], "key=value"),
    ],
)
def test_bad_input_exits_2_with_a_message(args, message, capsys):
    job = handler_job("sleep", params={"seconds": 1})
    args = [arg.format(job=job.name) for arg in args]
    with pytest.raises(SystemExit) as exited:
        call_command("batchjobs", "run", *args, "--json")
    assert exited.value.code == 2
    assert message in capsys.readouterr().out
    assert not BatchLog.objects.exists()


@pytest.mark.django_db(transaction=True, databases="__all__")
@pytest.mark.integration
@pytest.mark.parametrize(
    ("handler", "params", "code", "status"),
    [
        ("noop", {}, 0, ExecutionStatus.COMPLETED),
        ("fail", {"retryable": False}, 1, ExecutionStatus.FAILED),
    ],
)
def test_run_wait_reports_the_outcome_and_exit_code(worker, capsys, handler, params, code, status):
    job = handler_job(handler, params=params)
    try:
        call_command("batchjobs", "run", job.name, "--wait", "--timeout", "30", "--json")
        exit_code = 0
    except SystemExit as exited:
        exit_code = exited.code
    output = json.loads(capsys.readouterr().out)
    assert (exit_code, output["status"]) == (code, status)
