"""GET /api/scheduler: the seed's status card."""

from datetime import UTC, datetime, timedelta

import pytest

from batchjobs.models import BatchLog, BatchSchedule, Trigger
from batchjobs.services.schedules import schedule_create, schedule_update
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db

SCHEDULER = "/api/scheduler"
CARD = {
    "isRunning", "totalJobs", "pendingJobs", "runningJobs", "completedJobs", "failedJobs",
    "nextJob",
}  # fmt: skip


def later(**delta) -> datetime:
    return datetime.now(UTC) + timedelta(**delta)


def test_next_job_is_left_out_when_nothing_is_due(api):
    handler_job("noop")  # a job, but no schedule

    body = api("reader").get(SCHEDULER).json()

    assert set(body) == CARD - {"nextJob"}


@pytest.mark.parametrize(
    ("timing", "seed_type"),
    [
        ({"delay_seconds": 0}, "immediate"),
        ({"delay_seconds": 600}, "delayed"),
        # how the time was given decides, not how it looks: a fraction of a second or none
        ({"kind": "once", "run_at": later(hours=3)}, "scheduled"),
        ({"kind": "once", "run_at": later(hours=3).replace(microsecond=0)}, "scheduled"),
        ({"kind": "interval", "interval_every": 2, "interval_unit": "hours"}, "recurring"),
        ({"kind": "cron", "cron_expression": "0 9 * * *"}, "recurring"),
    ],
)
def test_the_type_of_the_next_job_is_in_the_seeds_words(api, timing, seed_type):
    job = handler_job("noop", name="nightly")
    schedule = schedule_create(job=job, **timing)

    next_job = api("reader").get(SCHEDULER).json()["nextJob"]

    assert next_job == {
        "id": job.pk,
        "workflowName": "nightly",
        "scheduledTime": next_job["scheduledTime"],
        "type": seed_type,
    }
    assert datetime.fromisoformat(next_job["scheduledTime"]) == schedule.next_fire_at


def test_a_delayed_once_given_a_date_and_time_is_scheduled(api):
    job = handler_job("noop")
    schedule = schedule_create(job=job, delay_seconds=600)
    assert api("reader").get(SCHEDULER).json()["nextJob"]["type"] == "delayed"

    schedule_update(schedule=schedule, run_at=later(hours=2))

    assert api("reader").get(SCHEDULER).json()["nextJob"]["type"] == "scheduled"


def test_pending_jobs_counts_queued_runs_and_the_next_fire_of_each_live_schedule(api):
    # given
    job = handler_job("noop")
    schedule_create(job=job, kind="interval", interval_every=1, interval_unit="hours")
    schedule_create(job=job, delay_seconds=60)
    schedule_create(job=job, kind="cron", cron_expression="0 9 * * *", paused=True)
    disabled = handler_job("noop", enabled=False)
    BatchSchedule.objects.create(
        job=disabled, kind="interval", interval_every=5, next_fire_at=later(hours=1)
    )
    BatchSchedule.objects.create(  # fired: no fire to come
        job=job, kind="once", run_at=later(hours=-1), next_fire_at=None
    )
    BatchSchedule.objects.create(  # set aside by beat: it does not fire until it is saved
        job=job, kind="interval", interval_every=5, next_fire_at=later(hours=1),
        set_aside_at=later(), set_aside_reason="boom",
    )  # fmt: skip
    for status in ["QUEUED", "QUEUED", "STARTED", "COMPLETED", "FAILED", "SKIPPED"]:
        BatchLog.objects.create(job=job, trigger=Trigger.API, status=status)

    # when
    body = api("reader").get(SCHEDULER).json()

    # then: two queued runs, and the interval's and the delayed once's next fires
    assert body["pendingJobs"] == 4
    assert (body["runningJobs"], body["completedJobs"], body["failedJobs"]) == (1, 1, 1)
    assert body["totalJobs"] == 2


def test_it_needs_a_user_who_may_view_executions_by_default(api, make_user, settings):
    settings.BATCHJOBS_SCHEDULER_STATUS_PUBLIC = False
    user = make_user("reader")
    user.user_permissions.remove(*user.user_permissions.filter(codename="view_batchlog"))

    anonymous = api("anonymous").get(SCHEDULER)
    without = api("reader").get(SCHEDULER)

    assert anonymous.status_code == 401
    assert without.status_code == 403


def test_the_setting_makes_it_public_with_the_card_only(api, settings):
    settings.BATCHJOBS_SCHEDULER_STATUS_PUBLIC = True
    schedule_create(job=handler_job("noop"), delay_seconds=60)
    BatchLog.objects.create(job=handler_job("noop"), trigger=Trigger.API, status="QUEUED")

    response = api("anonymous").get(SCHEDULER)
    v1 = api("anonymous").get("/api/v1/scheduler")
    executions = api("anonymous").get("/api/v1/executions")

    assert response.status_code == 200
    assert set(response.json()) == CARD
    assert response.json()["pendingJobs"] == 2
    # the rest of the API stays closed
    assert (v1.status_code, executions.status_code) == (401, 401)


def test_the_public_card_still_refuses_writes(api, settings):
    settings.BATCHJOBS_SCHEDULER_STATUS_PUBLIC = True

    response = api("anonymous").post(SCHEDULER, {}, format="json")

    assert response.status_code == 405
