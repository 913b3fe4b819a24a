from datetime import UTC, datetime

import pytest

from batchjobs.models import BatchJob, BatchLog, BatchSchedule
from batchjobs.services.jobs import job_update
from batchjobs_examples.demo import demo_jobs, demo_seed

pytestmark = pytest.mark.django_db

BASE_URL = "http://127.0.0.1:8000"
DEMOS = demo_jobs(base_url=BASE_URL, now=datetime.now(UTC))
DEMO_NAMES = {demo.name for demo in DEMOS}


@pytest.fixture(autouse=True)
def demo_endpoint_allowed(settings):
    # What quickstart puts in its children's environment.
    settings.BATCHJOBS_HTTP_ALLOWLIST = ["127.0.0.1:8000"]


def test_demo_seed_creates_each_job_once_with_its_schedule_and_one_first_run():
    # when
    first = demo_seed(base_url=BASE_URL)
    second = demo_seed(base_url=BASE_URL)

    # then
    assert {o.name for o in first if o.created} == DEMO_NAMES
    assert all(o.first_run is not None and o.first_run.job == o.job for o in first)
    assert not any(o.created or o.first_run or o.error for o in second)
    assert [o.job.pk for o in second] == [o.job.pk for o in first]
    assert BatchJob.objects.count() == len(DEMO_NAMES)
    assert BatchLog.objects.count() == len(DEMO_NAMES)
    scheduled = {demo.name for demo in DEMOS if demo.schedule}
    assert scheduled  # the demo shows schedules too
    assert sorted(BatchSchedule.objects.values_list("job__name", flat=True)) == sorted(scheduled)
    assert not BatchSchedule.objects.filter(next_fire_at__isnull=True).exists()


def test_demo_http_job_calls_the_given_base_url():
    demo_seed(base_url="http://127.0.0.1:8000/")

    assert BatchJob.objects.get(name="demo-http-ping").http_url == (
        "http://127.0.0.1:8000/demo/ping"
    )


def test_demo_seed_leaves_an_edited_demo_job_as_it_is():
    # given
    demo_seed(base_url=BASE_URL)
    job = BatchJob.objects.get(name="demo-sleep")
    job_update(job=job, params={"seconds": 1}, description="mine now")

    # when
    demo_seed(base_url=BASE_URL)

    # then
    job.refresh_from_db()
    assert (job.params, job.description) == ({"seconds": 1}, "mine now")


def test_demo_seed_reports_an_http_job_the_allowlist_refuses(settings):
    # given an operator's allowlist that does not cover the demo endpoint
    settings.BATCHJOBS_HTTP_ALLOWLIST = ["10.1.2.3"]

    # when
    outcomes = {o.name: o for o in demo_seed(base_url=BASE_URL)}

    # then the other demo jobs are still created
    refused = outcomes["demo-http-ping"]
    assert not refused.created and refused.job is None
    assert "BATCHJOBS_HTTP_ALLOWLIST" in refused.error
    assert not BatchJob.objects.filter(name="demo-http-ping").exists()
    assert {name for name, o in outcomes.items() if o.created} == DEMO_NAMES - {"demo-http-ping"}
