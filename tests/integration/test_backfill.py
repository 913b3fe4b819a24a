"""A backfill run to completion by real worker processes: each run's end tops the backfill up
(the execution_ended hook, in the worker), never more than its cap at once."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Max, Min

from batchjobs.models import Backfill, BackfillStatus, BatchLog, ExecutionStatus, Trigger
from batchjobs.services.backfills import backfill_create
from batchjobs.services.schedules import schedule_create
from tests.support.factories import handler_job
from tests.support.processes import wait_until

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.integration]


def test_a_small_backfill_completes_on_the_workers_within_its_cap(worker):
    # given eight half-second runs of a cron schedule, two at a time
    job = handler_job("sleep", params={"seconds": 0.5})
    schedule = schedule_create(job=job, kind="cron", cron_expression="0 */3 * * *")
    start = datetime(2026, 6, 1, tzinfo=UTC)
    backfill = backfill_create(
        schedule=schedule, range_start=start, range_end=start + timedelta(hours=21),
        max_concurrency=2,
    )  # fmt: skip
    assert isinstance(backfill, Backfill)
    # when the workers run them
    done = wait_until(
        lambda: Backfill.objects.filter(pk=backfill.pk, status=BackfillStatus.COMPLETED).first(),
        timeout=60,
        message="the backfill did not complete within 60 s",
    )
    # then every fire ran once, and no more than two ran at a time
    runs = list(BatchLog.objects.filter(schedule=schedule).order_by("scheduled_for"))
    assert [run.scheduled_for for run in runs] == [start + timedelta(hours=3 * n) for n in range(8)]
    assert {(run.status, run.trigger) for run in runs} == {
        (ExecutionStatus.COMPLETED, Trigger.BACKFILL)
    }
    assert (done.fires_total, done.fires_created, done.fires_existing) == (8, 8, 0)
    spans = [(run.started_at, run.finished_at) for run in runs]
    most = max(sum(1 for s, f in spans if s <= moment < f) for moment, _ in spans)
    assert most <= 2
    bounds = BatchLog.objects.filter(backfill=backfill).aggregate(
        Min("created_at"), Max("created_at")
    )
    assert bounds["created_at__max"] > bounds["created_at__min"]  # created as slots freed
