"""The batch engine in-process (each test runs attempts with run_in_process), real database."""

import pytest
from django.db import connection

from batchjobs.errors import Conflict
from batchjobs.models import ExecutionStatus, StepExecution
from batchjobs.services import operator
from batchjobs_examples.models import ExampleCustomer
from tests.support import batch_jobs as jobs
from tests.support.batch_jobs import customer_numbers
from tests.support.runs import run_in_process, step_execution

pytestmark = pytest.mark.django_db


def test_chunk_step_writes_everything_with_counts():
    execution = run_in_process(
        operator.job_start(job_name="tests.numbers", params={"run": 1, "count": 23})
    )
    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    load = step_execution(execution, "load")
    assert (load.read_count, load.write_count, load.commit_count) == (23, 23, 5)
    assert customer_numbers() == list(range(1, 24))
    assert execution.execution_context["job"]["customers"] == 23


def test_read_and_write_skips_within_the_limit():
    execution = run_in_process(
        operator.job_start(
            job_name="tests.numbers", params={"run": 2, "count": 20, "bad": [3], "poison": [7, 12]}
        )
    )
    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    load = step_execution(execution, "load")
    assert (load.read_skip_count, load.write_skip_count) == (1, 2)
    assert load.write_count == 17
    assert customer_numbers() == [n for n in range(1, 21) if n not in (3, 7, 12)]


def test_skip_limit_exceeded_fails_with_the_counts():
    execution = run_in_process(
        operator.job_start(
            job_name="tests.numbers", params={"run": 3, "count": 20, "bad": [1, 2, 3, 4]}
        )
    )
    assert execution.status == ExecutionStatus.FAILED
    load = step_execution(execution, "load")
    assert load.status == ExecutionStatus.FAILED
    assert load.read_skip_count == 3
    assert "skip limit 3" in load.error
    assert execution.attempts == 1  # a skip limit is not worth another attempt


def test_processor_filters():
    execution = run_in_process(
        operator.job_start(job_name="tests.odd_numbers", params={"count": 9})
    )
    load = step_execution(execution, "load")
    assert (load.read_count, load.filter_count, load.write_count) == (9, 4, 5)
    assert customer_numbers() == [1, 3, 5, 7, 9]


def test_item_listeners_see_every_read_process_and_write_in_order():
    # given numbers 1..6 where reading 2 fails, the processors filter even numbers, then
    # reject 5 and fail 3 once (a transient error the retry policy retries)
    jobs.ItemEvents.events.clear()
    jobs._checked_calls.clear()

    # when
    execution = run_in_process(
        operator.job_start(job_name="tests.item_listeners", params={"count": 6, "bad": [2]})
    )

    # then
    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    assert jobs.ItemEvents.events == [
        ("read", 1), ("read error", "bad number 2"), ("read", 3), ("read", 4),
        ("processed", 1, 1), ("processed", 3, 3), ("processed", 4, None),
        ("written", [1, 3]),
        ("read", 5), ("read", 6),
        ("process error", 5, "ValueError"), ("processed", 6, None),
        ("written", []),
    ]  # fmt: skip
    assert jobs._checked_calls == {1: 1, 3: 2, 5: 1}  # even numbers never reach the second
    load = step_execution(execution, "load")
    assert (load.read_count, load.read_skip_count, load.process_skip_count) == (5, 1, 1)
    assert (load.filter_count, load.write_count) == (2, 2)
    assert customer_numbers() == [1, 3]


def test_write_retry():
    execution = run_in_process(operator.job_start(job_name="tests.retry", params={"count": 10}))
    load = step_execution(execution, "load")
    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    assert load.rollback_count == 2 and load.write_count == 10


@pytest.mark.parametrize(("fail", "ran"), [(False, ["report"]), (True, ["recover"])])
def test_conditional_flow_takes_each_branch(fail, ran):
    execution = run_in_process(operator.job_start(job_name="tests.flow", params={"fail": fail}))
    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    assert execution.execution_context["job"]["ran"] == ran
    assert step_execution(execution, "first").status == (
        ExecutionStatus.FAILED if fail else "COMPLETED"
    )


@pytest.mark.parametrize(("size", "branch"), [(9, "big"), (2, "small")])
def test_decider(size, branch):
    execution = run_in_process(operator.job_start(job_name="tests.decider", params={"size": size}))
    assert execution.execution_context["job"]["ran"] == [branch]


def test_a_completed_instance_is_refused_and_a_new_one_is_not():
    run_in_process(operator.job_start(job_name="tests.numbers", params={"run": 9, "count": 3}))
    with pytest.raises(Conflict, match="already completed"):
        operator.job_start(job_name="tests.numbers", params={"run": 9, "count": 3})
    assert (
        operator.job_start(job_name="tests.numbers", params={"run": 10, "count": 3}).status
        == ExecutionStatus.QUEUED
    )


def test_restart_after_failure_skips_completed_steps_and_resumes_the_failed_one():
    # given a run that fails at the 4th skip, after 2 chunks were committed
    first = run_in_process(
        operator.job_start(
            job_name="tests.numbers", params={"run": 4, "count": 30, "bad": [11, 12, 13, 14]}
        )
    )
    assert first.status == ExecutionStatus.FAILED
    written_before = customer_numbers()
    assert written_before == list(range(1, 11))
    # when restarted (the bad numbers were fixed in the meantime: new params are not allowed,
    # so this restart fails again at the same place, proving it resumed there)
    second = run_in_process(operator.execution_restart(execution_id=first.pk))
    assert second.status == ExecutionStatus.FAILED
    assert (
        step_execution(second, "load").read_count == 0
    )  # resumed at the checkpoint, failed at once
    assert customer_numbers() == written_before


def test_partitioned_step_in_process_runs_every_partition():
    execution = run_in_process(
        operator.job_start(job_name="tests.partitioned", params={"count": 95})
    )
    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    partitions = StepExecution.objects.filter(execution=execution).exclude(partition="")
    assert sorted(partitions.values_list("partition", flat=True)) == ["p0", "p1", "p2", "p3"]
    assert step_execution(execution, "load").write_count == 95
    assert customer_numbers() == list(range(1, 96))


def test_stop_of_a_queued_execution_and_abandon():
    execution = operator.job_start(job_name="tests.numbers", params={"run": 5, "count": 3})
    stopped = operator.execution_stop(execution_id=execution.pk)
    assert stopped.status == ExecutionStatus.STOPPED
    abandoned = operator.execution_abandon(execution_id=execution.pk)
    assert abandoned.status == ExecutionStatus.ABANDONED
    with pytest.raises(Conflict):
        operator.execution_restart(execution_id=execution.pk)
    with pytest.raises(Conflict):
        operator.execution_abandon(execution_id=execution.pk)


def test_operator_summaries():
    execution = run_in_process(
        operator.job_start(job_name="tests.numbers", params={"run": 6, "count": 7})
    )
    assert (
        operator.execution_summary(execution_id=execution.pk)["status"] == ExecutionStatus.COMPLETED
    )
    steps = operator.execution_step_summaries(execution_id=execution.pk)
    assert [(s["step"], s["write_count"]) for s in steps] == [("load", 7), ("report", 0)]
    assert "tests.numbers" in operator.job_names()
    assert operator.job_running_executions(job_name="tests.numbers") == []


def _load_counts(execution) -> dict:
    load = step_execution(execution, "load")
    names = ("read_count", "write_count", "read_skip_count", "write_skip_count", "commit_count")
    return {name: getattr(load, name) for name in names} | {"position": load.execution_context}


def test_overlapped_writes_commit_what_chunk_by_chunk_writing_does():
    # given 23 numbers, 3 unreadable, and the customer for 7 already there: its chunk's COPY
    # fails, is written again the usual way, then scanned, and 7 skipped as a duplicate
    ExampleCustomer.objects.create(email="n7@example.com", name="already")
    params = {"count": 23, "bad": [3]}
    by_chunk = run_in_process(
        operator.job_start(job_name="tests.copied_numbers", params={"run": 1, **params})
    )
    written = customer_numbers()
    ExampleCustomer.objects.exclude(email="n7@example.com").delete()
    overlapped = run_in_process(
        operator.job_start(job_name="tests.copied_numbers_overlapped", params={"run": 1, **params})
    )

    assert by_chunk.status == overlapped.status == ExecutionStatus.COMPLETED, overlapped.error
    assert customer_numbers() == written == [n for n in range(1, 24) if n != 3]
    assert _load_counts(overlapped) == _load_counts(by_chunk) == {
        "read_count": 22, "write_count": 21, "read_skip_count": 1, "write_skip_count": 1,
        "commit_count": 5, "position": {"numbers.position": 23},
    }  # fmt: skip
    # the streamed attempt that failed counts as one more rollback (on PostgreSQL, where the
    # step overlaps; elsewhere it writes chunk by chunk)
    extra = 1 if connection.vendor == "postgresql" else 0
    rollbacks = step_execution(overlapped, "load").rollback_count
    assert rollbacks == step_execution(by_chunk, "load").rollback_count + extra


@pytest.mark.parametrize("job", ["tests.copied_numbers", "tests.copied_numbers_overlapped"])
def test_a_read_failure_in_the_next_chunk_comes_after_this_chunk_commits(job):
    # given a 4th unreadable number in the 3rd chunk, past the skip limit of 3, read (when
    # overlapping) while the 2nd chunk's rows are still being written
    execution = run_in_process(
        operator.job_start(job_name=job, params={"run": 1, "count": 20, "bad": [4, 9, 12, 14]})
    )

    assert execution.status == ExecutionStatus.FAILED
    load = step_execution(execution, "load")
    assert "skip limit 3" in load.error
    assert customer_numbers() == [1, 2, 3, 5, 6, 7, 8, 10, 11, 13]  # two chunks of 5
    assert load.execution_context == {"numbers.position": 13}  # a restart reads on from 14
    assert (load.read_skip_count, load.write_count, load.commit_count) == (3, 10, 2)
