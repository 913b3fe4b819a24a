"""Progress that is right: a total only when this run knows it (its handler said so, or its
step's reader counted its own input), never one carried from another run; a rate and an ETA
that do not jump between heartbeats."""

from datetime import timedelta

import pytest

from batchjobs.batch import JobBuilder, batch_job, chunk_step
from batchjobs.batch.listeners import ChunkListener
from batchjobs.batch.readers import CsvReader
from batchjobs.execution.lifecycle import execution_claim
from batchjobs.models import BatchAttempt, BatchLog, ExecutionStatus
from batchjobs.models.clock import database_now
from batchjobs.selectors.progress import execution_progress
from tests.support.factories import batch_start, handler_job, start
from tests.support.runs import run_in_process

pytestmark = pytest.mark.django_db

# What the chunk listener saw of the step's progress after each chunk committed.
SEEN: list = []


class _ProgressSeen(ChunkListener):
    def after_chunk(self, step_context) -> None:
        execution = BatchLog.objects.get(pk=step_context.execution_id)
        SEEN.append(execution_progress(execution=execution))


class _Discard:
    def write(self, items) -> None:
        pass


@batch_job("tests.progress.csv")
def progress_csv():
    load = chunk_step(
        "load",
        reader=lambda ctx: CsvReader(ctx.params["file"]),
        writer=lambda ctx: _Discard(),
        chunk_size=100,
        listeners=(_ProgressSeen(),),
    )
    return JobBuilder().start(load).build()


def _csv(path, rows: int):
    path.write_text("email,name\n" + "".join(f"n{n}@example.com,n{n}\n" for n in range(rows)))
    return str(path)


def test_a_second_import_shows_its_own_files_total_not_the_first_ones(tmp_path):
    # given: an import of a 1,999-line file that completed
    first = run_in_process(batch_start("tests.progress.csv", {"file": _csv(tmp_path / "a", 1999)}))
    assert first.status == ExecutionStatus.COMPLETED
    # when: another file of 300 lines is imported
    SEEN.clear()
    second = run_in_process(batch_start("tests.progress.csv", {"file": _csv(tmp_path / "b", 300)}))
    # then: while it ran, its step counted its own file
    assert second.status == ExecutionStatus.COMPLETED
    totals = [(entry.done, entry.total) for entries in SEEN for entry in entries]
    assert totals == [(100, 300), (200, 300), (300, 300), (300, 300)]
    assert all(entry.eta_seconds is not None for entries in SEEN for entry in entries)


class _Uncounted:
    """A reader that cannot tell how many items it has (no items_remaining)."""

    def __init__(self) -> None:
        self.left = 250

    def read(self):
        self.left -= 1
        return self.left if self.left >= 0 else None


@batch_job("tests.progress.uncounted")
def progress_uncounted():
    load = chunk_step(
        "load", reader=lambda ctx: _Uncounted(), writer=lambda ctx: _Discard(), chunk_size=100,
        listeners=(_ProgressSeen(),),
    )  # fmt: skip
    return JobBuilder().start(load).build()


def test_a_step_whose_reader_cannot_count_shows_no_total_and_no_eta(tmp_path):
    # given: an earlier run of the job that read 250 items
    run_in_process(batch_start("tests.progress.uncounted", {"run": 1}))
    SEEN.clear()
    # when
    run_in_process(batch_start("tests.progress.uncounted", {"run": 2}))
    # then: done and a rate, but neither the earlier run's count nor an ETA
    entries = [entry for entries in SEEN for entry in entries]
    assert [entry.done for entry in entries] == [100, 200, 250]
    assert {(entry.total, entry.eta_seconds) for entry in entries} == {(None, None)}


def test_a_new_attempt_does_not_show_the_progress_of_the_one_before():
    # given: an execution back in the queue for its second attempt, with the first's progress
    execution = start(handler_job("noop", max_attempts=2))
    BatchLog.objects.filter(pk=execution.pk).update(progress_done=50, progress_total=100)
    # when
    claim = execution_claim(execution_id=execution.pk, worker="w", task_id="t")
    # then
    assert claim is not None
    execution.refresh_from_db()
    assert (execution.progress_done, execution.progress_total) == (None, None)
    assert execution_progress(execution=execution) == []


def test_a_sleep_jobs_rate_and_eta_hold_steady_between_heartbeats():
    # given: a 60 s sleep reporting int(elapsed) every second, its count carried to the
    # database by a heartbeat every 5 s; the console polls every 0.5 s
    execution = start(handler_job("sleep", params={"seconds": 60}))
    claim = execution_claim(execution_id=execution.pk, worker="w", task_id="t")
    assert claim is not None
    started = BatchAttempt.objects.get(execution=execution, number=1).started_at
    rates, etas = [], []
    for tenth in range(100, 500, 5):  # from 10 s to 50 s after the start
        now = started + timedelta(seconds=tenth / 10)
        beat = (tenth // 50) * 5.0  # the last heartbeat, every 5 s
        reported = int(beat - 0.3)  # the handler's last report, a moment before the beat
        BatchLog.objects.filter(pk=execution.pk).update(
            progress_done=reported,
            progress_total=60,
            heartbeat_at=started + timedelta(seconds=beat),
        )
        execution.refresh_from_db()
        [entry] = execution_progress(execution=execution, now=now)
        rates.append(entry.rate)
        etas.append((tenth / 10, entry.eta_seconds))
    # then: the rate stays within 10% of the true 1 item/s
    assert min(rates) >= 0.9 and max(rates) <= 1.0, (min(rates), max(rates))
    # and the ETA counts down with the clock: between two polls 0.5 s apart it moves by
    # about 0.5 s (a new count corrects it by the second the handler's count lags behind),
    # never by the tens of seconds a sample's age made it jump before
    for (t0, eta0), (t1, eta1) in zip(etas, etas[1:], strict=False):
        error = abs((eta0 - eta1) - (t1 - t0))
        assert error < (3.0 if t0 < 30 else 1.0), (t0, eta0, t1, eta1)


def test_a_finished_execution_keeps_its_rate_and_has_no_eta():
    execution = start(handler_job("noop"))
    now = database_now()
    BatchLog.objects.filter(pk=execution.pk).update(
        status=ExecutionStatus.COMPLETED, started_at=now - timedelta(seconds=20),
        finished_at=now - timedelta(seconds=10), progress_done=50, progress_total=100,
    )  # fmt: skip
    execution.refresh_from_db()
    [entry] = execution_progress(execution=execution, now=now + timedelta(hours=1))
    assert entry.rate == pytest.approx(5.0)
    assert entry.eta_seconds is None


def test_the_dashboards_running_list_reads_its_steps_in_one_query_however_many_run(
    django_assert_max_num_queries,
):
    # given: running executions of a batch job, each with a running step
    from batchjobs.models import StepExecution
    from batchjobs.selectors.progress import running_executions

    def running(count: int) -> None:
        for _ in range(count):
            execution = start(handler_job("noop"))
            BatchLog.objects.filter(pk=execution.pk).update(
                status=ExecutionStatus.STARTED, started_at=database_now(), attempts=1
            )
            StepExecution.objects.create(
                execution=execution, step_name="load", status=ExecutionStatus.STARTED,
                started_at=database_now(), read_count=5,
            )  # fmt: skip

    running(2)
    with django_assert_max_num_queries(3) as few:
        listed = running_executions()
    running(8)
    # when: five times as many run
    with django_assert_max_num_queries(len(few.captured_queries)):
        many = running_executions()
    # then: the same queries, and each execution has its step's progress
    assert len(listed) == 2 and len(many) == 10
    assert all([p.label for p in row.progress] == ["load"] for row in many)
