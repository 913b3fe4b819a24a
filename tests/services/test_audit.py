"""The audit trail: each service that changes a job, a schedule, a notification or an
execution's state records who did what, with before/after of the fields and secrets masked."""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from batchjobs.errors import InvalidInput
from batchjobs.models import AuditAction, AuditEntry, BatchJob, ExecutionStatus, Trigger
from batchjobs.scheduling.firing import schedules_fire_due
from batchjobs.secrets import SECRET_MASK
from batchjobs.services import operator
from batchjobs.services.audit import audit_trail
from batchjobs.services.executions import execution_start
from batchjobs.services.jobs import job_create, job_delete, job_set_enabled, job_update
from batchjobs.services.schedules import (
    schedule_create,
    schedule_delete,
    schedule_pause,
    schedule_resume,
    schedule_update,
)
from tests.support.admin_forms import job_form_data
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db

SECRET_HEADERS = [
    {"name": "Authorization", "value": "Bearer s3cret", "secret": True},
    {"name": "X-Team", "value": "ops", "secret": False},
]


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user(username="alice", password="x", is_staff=True)


def entries(obj) -> list[AuditEntry]:
    return list(audit_trail(obj=obj).order_by("id"))


def test_creating_a_job_records_who_and_the_values_with_secrets_masked(alice):
    job = job_create(
        name="report", kind="http", http_url="https://example.com/r", http_headers=SECRET_HEADERS,
        user=alice,
    )  # fmt: skip

    [entry] = entries(job)
    assert (entry.actor, entry.actor_name, entry.action) == (alice, "alice", AuditAction.CREATED)
    assert entry.job == job and entry.job_name == "report" and entry.object_repr == "report"
    assert entry.changes["http_url"] == [None, "https://example.com/r"]
    assert entry.changes["http_headers"][1][0]["value"] == SECRET_MASK
    assert entry.changes["http_headers"][1][1]["value"] == "ops"
    assert "s3cret" not in str(entry.changes)
    assert "description" not in entry.changes  # empty fields of a new object are left out


def test_changing_a_job_records_only_the_fields_that_changed(alice):
    job = job_create(
        name="report", kind="http", http_url="https://example.com/r", http_headers=SECRET_HEADERS
    )
    rotated = [{**SECRET_HEADERS[0], "value": "Bearer rotated"}, SECRET_HEADERS[1]]

    job_update(job=job, timeout_seconds=30, http_headers=rotated, user=alice)
    job_update(job=job, timeout_seconds=30, user=alice)  # no change: nothing recorded

    created, changed = entries(job)
    assert created.actor_name == "system" and created.actor is None
    assert changed.action == AuditAction.CHANGED and changed.actor == alice
    assert set(changed.changes) == {"timeout_seconds", "http_headers"}
    assert changed.changes["timeout_seconds"] == [60.0, 30]
    # The secret changed: the entry says so, but shows the mask on both sides.
    before, after = changed.changes["http_headers"]
    assert before[0]["value"] == after[0]["value"] == SECRET_MASK
    assert "rotated" not in str(changed.changes) and "s3cret" not in str(changed.changes)


def test_a_refused_change_records_nothing():
    job = handler_job("noop")
    with pytest.raises(InvalidInput):
        job_update(job=job, timeout_seconds=-1)
    assert [e.action for e in entries(job)] == [AuditAction.CREATED]


def test_enable_and_disable_are_recorded_once_per_change(alice):
    job = handler_job("noop")

    job_set_enabled(job=job, enabled=False, user=alice)
    job_set_enabled(job=job, enabled=False, user=alice)  # already disabled
    job_set_enabled(job=job, enabled=True)

    actions = [(e.action, e.actor_name, e.changes) for e in entries(job)[1:]]
    assert actions == [
        (AuditAction.DISABLED, "alice", {"enabled": [True, False]}),
        (AuditAction.ENABLED, "system", {"enabled": [False, True]}),
    ]


def test_schedule_changes_are_recorded_on_the_schedule_and_in_the_jobs_trail(alice):
    job = handler_job("noop")
    schedule = schedule_create(
        job=job, kind="cron", cron_expression="0 3 * * *", timezone="Europe/Berlin", user=alice
    )
    schedule_update(schedule=schedule, cron_expression="30 3 * * *", user=alice)
    schedule_pause(schedule=schedule, user=alice)
    schedule_resume(schedule=schedule, user=alice)
    schedule_id = schedule.pk
    schedule_delete(schedule=schedule, user=alice)

    trail = AuditEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(schedule), object_id=schedule_id
    ).order_by("id")
    assert [e.action for e in trail] == [
        AuditAction.CREATED, AuditAction.CHANGED, AuditAction.PAUSED, AuditAction.RESUMED,
        AuditAction.DELETED,
    ]  # fmt: skip
    assert trail[1].changes == {"cron_expression": ["0 3 * * *", "30 3 * * *"]}
    assert trail[0].changes["timezone"] == [None, "Europe/Berlin"]
    # next_fire_at is beat's bookkeeping, not a change anyone made
    assert "next_fire_at" not in trail[0].changes
    assert set(job.audit_entries.values_list("action", flat=True)) >= {
        AuditAction.CREATED, AuditAction.PAUSED, AuditAction.DELETED
    }  # fmt: skip


def test_runs_stops_restarts_and_abandons_name_who_did_them(alice):
    job = handler_job("noop")

    from_cli = execution_start(job=job, trigger=Trigger.CLI)
    by_hand = execution_start(job=job, trigger=Trigger.MANUAL, user=alice)
    operator.execution_stop(execution_id=by_hand.pk, user=alice)  # queued: stops at once
    restarted = operator.execution_restart(execution_id=by_hand.pk, user=alice)
    operator.execution_stop(execution_id=restarted.pk, user=alice)
    operator.execution_abandon(execution_id=restarted.pk, user=alice)

    assert [(e.action, e.actor_name) for e in entries(from_cli)] == [(AuditAction.STARTED, "cli")]
    assert [(e.action, e.changes.get("status")) for e in entries(by_hand)] == [
        (AuditAction.STARTED, None),
        (AuditAction.STOPPED, [ExecutionStatus.QUEUED, ExecutionStatus.STOPPED]),
    ]
    assert [(e.action, e.actor_name) for e in entries(restarted)] == [
        (AuditAction.RESTARTED, "alice"), (AuditAction.STOPPED, "alice"),
        (AuditAction.ABANDONED, "alice"),
    ]  # fmt: skip
    assert entries(restarted)[0].changes["restart_of"] == [None, by_hand.pk]
    assert job.audit_entries.filter(content_type__model="batchlog").count() == 6


def test_a_refused_operation_records_nothing(alice):
    execution = execution_start(job=handler_job("noop"), trigger=Trigger.API)
    with pytest.raises(Exception, match="only STOPPED or FAILED"):
        operator.execution_abandon(execution_id=execution.pk, user=alice)
    assert [e.action for e in entries(execution)] == [AuditAction.STARTED]


def test_a_deleted_jobs_trail_keeps_its_name(alice):
    job = handler_job("noop", name="doomed")
    job_id = job.pk
    job_delete(job=job, user=alice)

    trail = AuditEntry.objects.filter(job_name="doomed").order_by("id")
    assert [e.action for e in trail] == [AuditAction.CREATED, AuditAction.DELETED]
    assert trail[1].object_id == job_id and trail[1].actor == alice
    assert trail[1].job is None  # the job is gone; its name and id stay
    assert not BatchJob.objects.filter(pk=job_id).exists()


def test_the_admin_records_the_logged_in_user_and_shows_the_jobs_trail(admin_client):
    # given a job created, then edited through the admin form
    response = admin_client.post(
        reverse("admin:batchjobs_batchjob_add"), job_form_data(name="nightly")
    )
    assert response.status_code == 302
    job = BatchJob.objects.get(name="nightly")
    change = reverse("admin:batchjobs_batchjob_change", args=[job.pk])
    admin_client.post(change, job_form_data(name="nightly", timeout_seconds="45"))
    other = handler_job("noop", name="other")

    # when the job's audit trail is opened from its page
    page = admin_client.get(change).content.decode()
    trail_url = f"{reverse('admin:batchjobs_auditentry_changelist')}?job__id__exact={job.pk}"
    trail = admin_client.get(trail_url)

    # then it lists what the admin user did to this job, and nothing about the other job
    assert "Audit trail" in page and f"?job__id__exact={job.pk}" in page
    listed = list(trail.context["cl"].result_list)
    assert [(e.action, e.actor_name) for e in listed] == [
        (AuditAction.CHANGED, "admin"), (AuditAction.CREATED, "admin")
    ]  # fmt: skip
    assert listed[0].changes["timeout_seconds"] == [60.0, 45.0]
    assert other.pk not in {e.job_id for e in listed}
    assert "60.0 → 45.0" in trail.content.decode()


def test_the_trail_is_read_only(admin_client):
    job = handler_job("noop")
    entry = entries(job)[0]

    add = admin_client.get(reverse("admin:batchjobs_auditentry_add"))
    change = admin_client.post(
        reverse("admin:batchjobs_auditentry_change", args=[entry.pk]), {"actor_name": "mallory"}
    )
    delete = admin_client.post(
        reverse("admin:batchjobs_auditentry_delete", args=[entry.pk]), {"post": "yes"}
    )

    assert (add.status_code, change.status_code, delete.status_code) == (403, 403, 403)
    entry.refresh_from_db()
    assert entry.actor_name == "system"


def test_fires_made_by_beat_are_not_audited():
    # given a schedule due now
    job = handler_job("noop")
    schedule_create(job=job, kind="once", delay_seconds=0)

    # when beat fires it
    fired = schedules_fire_due()

    # then there is a run, and no audit entry: the schedule did its job, nobody acted
    assert len(fired.execution_ids) == 1
    assert not AuditEntry.objects.filter(content_type__model="batchlog").exists()
