"""Cloning a job: everything copied through the services in one transaction, the copy
disabled with its schedules paused; a bad name refused naming `name`, nothing saved."""

from datetime import timedelta

import pytest
from django.utils import timezone

from batchjobs.errors import InvalidInput
from batchjobs.models import (
    AuditAction,
    AuditEntry,
    BatchJob,
    BatchSchedule,
    JobDependency,
    JobNotification,
    JobTag,
)
from batchjobs.secrets import secret_decrypt
from batchjobs.services.calendars import calendar_create
from batchjobs.services.dependencies import dependency_create
from batchjobs.services.job_clone import job_clone, job_clone_name
from batchjobs.services.jobs import job_tags_set
from batchjobs.services.notifications import notification_save
from batchjobs.services.schedules import schedule_create
from tests.support.factories import http_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def original(django_user_model) -> BatchJob:
    job = http_job(
        "https://example.com/report",
        name="nightly report",
        http_headers=[
            {"name": "Authorization", "value": "Bearer s3cret", "secret": True},
            {"name": "X-Team", "value": "ops", "secret": False},
        ],
        params={"region": "kr"},
    )
    holidays = calendar_create(name="kr-holidays", excluded_dates=["2030-01-01"])
    schedule_create(job=job, kind="cron", cron_expression="0 2 * * *", timezone="Asia/Seoul",
                    calendars=[holidays], description="daily")  # fmt: skip
    schedule_create(job=job, kind="interval", interval_every=5, interval_unit="minutes")
    # a one-off that has fired: it will never fire again, so it is not copied
    fired = schedule_create(job=job, kind="once", run_at=timezone.now() + timedelta(hours=1))
    BatchSchedule.objects.filter(pk=fired.pk).update(run_at=timezone.now() - timedelta(days=1))
    notification_save(
        notification=JobNotification(
            job=job, channel="email", target="ops@example.com", on_failure=True
        )  # fmt: skip
    )
    job_tags_set(job=job, names=["nightly", "team-a"])
    upstream = http_job("https://example.com/extract", name="extract")
    dependency_create(upstream=upstream, downstream=job, condition="success")
    return job


def test_a_clone_copies_everything_disabled_with_its_schedules_paused(original, admin_user):
    # when
    cloned = job_clone(job=original, name="nightly report v2", user=admin_user)

    # then
    clone = BatchJob.objects.get(name="nightly report v2")
    assert cloned.job.pk == clone.pk != original.pk
    assert (cloned.schedules_copied, cloned.schedules_left_out) == (2, 1)
    assert clone.enabled is False
    assert (clone.kind, clone.http_url, clone.params) == (
        "http",
        original.http_url,
        {"region": "kr"},
    )
    assert clone.created_by == admin_user
    # the secret is copied encrypted, as stored, and still decrypts to the value
    secret = clone.http_headers[0]
    assert secret["value"] == original.http_headers[0]["value"] != "Bearer s3cret"
    assert secret_decrypt(secret["value"]) == "Bearer s3cret"
    assert clone.http_headers[1] == {"name": "X-Team", "value": "ops", "secret": False}
    schedules = list(clone.schedules.order_by("pk"))
    assert [(s.kind, s.cron_expression, s.interval_every, s.paused) for s in schedules] == [
        ("cron", "0 2 * * *", None, True),
        ("interval", "", 5, True),
    ]
    assert schedules[0].timezone == "Asia/Seoul"
    assert [c.name for c in schedules[0].calendars.all()] == ["kr-holidays"]
    assert list(clone.notifications.values_list("channel", "target", "on_failure")) == [
        ("email", "ops@example.com", True)
    ]
    assert sorted(clone.tags.values_list("name", flat=True)) == ["nightly", "team-a"]
    assert list(
        JobDependency.objects.filter(downstream=clone).values_list("upstream__name", "condition")
    ) == [("extract", "success")]
    # the original is untouched
    assert original.schedules.filter(paused=False).count() == 3
    # and every piece of the copy is in the audit trail, by the user who cloned
    assert (
        AuditEntry.objects.filter(job=clone, action=AuditAction.CREATED, actor=admin_user).count()
        >= 5
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [("nightly report", "already exists"), ("", "cannot be blank"), ("bad/name", "Use letters")],
)
def test_a_bad_name_is_refused_naming_name_and_nothing_is_saved(original, name, message):
    jobs, schedules = BatchJob.objects.count(), BatchSchedule.objects.count()
    notifications, edges = JobNotification.objects.count(), JobDependency.objects.count()
    audit = AuditEntry.objects.count()

    with pytest.raises(InvalidInput) as refused:
        job_clone(job=original, name=name)

    assert list(refused.value.field_errors) == ["name"]
    assert message in " ".join(refused.value.field_errors["name"])
    assert (
        BatchJob.objects.count(), BatchSchedule.objects.count(),
        JobNotification.objects.count(), JobDependency.objects.count(), AuditEntry.objects.count(),
    ) == (jobs, schedules, notifications, edges, audit)  # fmt: skip


def test_a_failure_after_the_job_is_saved_leaves_nothing_behind(original):
    # given: a notification stored with a target its validation now refuses
    JobNotification.objects.filter(job=original).update(target="not an address")
    jobs, tags = BatchJob.objects.count(), JobTag.objects.count()

    with pytest.raises(InvalidInput):
        job_clone(job=original, name="half copy")

    assert (BatchJob.objects.count(), JobTag.objects.count()) == (jobs, tags)
    assert not BatchSchedule.objects.filter(job__name="half copy").exists()


def test_the_default_name_is_copy_of_and_numbered_when_taken(original):
    assert job_clone_name(job=original) == "copy of nightly report"
    first = job_clone(job=original).job
    second = job_clone(job=original).job
    assert (first.name, second.name) == ("copy of nightly report", "copy of nightly report 2")
