"""Run limits in the admin: added, changed and deleted through the limit service (audited, a
host saved as job URLs name it), bad values shown on their field with nothing saved, and the
list counting what each limit holds waiting and runs."""

import pytest
from django.urls import reverse

from batchjobs.models import (
    AuditAction,
    AuditEntry,
    BatchLog,
    ExecutionStatus,
    RunLimit,
    Trigger,
)
from batchjobs.services.limits import limit_create
from tests.support.admin_forms import form_errors
from tests.support.factories import handler_job, http_job
from tests.support.processes import queue_purge

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:batchjobs_runlimit_changelist")
ADD = reverse("admin:batchjobs_runlimit_add")
# No worker consumes it: executions a test wakes wait there until it is purged.
QUEUE = "limits-admin-test"


def change_url(limit: RunLimit) -> str:
    return reverse("admin:batchjobs_runlimit_change", args=[limit.pk])


def limit_form(**fields: str) -> dict[str, str]:
    """A submission of the limit form, as a browser sends it (an empty box is "")."""
    return {
        "scope": "host",
        "name": "api.example.com",
        "max_running": "50",
        "max_per_second": "200",
        **fields,
    }


def test_a_limit_added_in_the_admin_is_saved_by_the_service(admin_client, admin_user):
    # when
    response = admin_client.post(ADD, limit_form(name="  API.Example.COM "))

    # then
    assert response.status_code == 302, form_errors(response)
    limit = RunLimit.objects.get()
    assert (limit.scope, limit.name, limit.max_running, limit.max_per_second) == (
        "host",
        "api.example.com",
        50,
        200,
    )
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.object_id) == (
        AuditAction.CREATED,
        admin_user,
        limit.pk,
    )
    assert entry.changes["name"] == [None, "api.example.com"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"max_running": "0"}, "max_running"),
        ({"max_running": "-1"}, "max_running"),
        ({"max_running": "100001"}, "max_running"),
        ({"max_running": "abc"}, "max_running"),
        ({"max_running": "NaN"}, "max_running"),
        ({"max_per_second": "0"}, "max_per_second"),
        ({"max_per_second": "100001"}, "max_per_second"),
        ({"scope": "queue", "name": "reports"}, "max_per_second"),
        ({"max_running": "", "max_per_second": ""}, "max_running"),
        ({"name": ""}, "name"),
        ({"name": "https://api.example.com/"}, "name"),
        ({"name": "api.example.com:8443"}, "name"),
        ({"name": "Taken.example.com"}, "name"),
        ({"scope": "pool"}, "scope"),
    ],
)
def test_a_bad_value_shows_on_its_field_and_saves_nothing(admin_client, fields, field):
    limit_create(scope="host", name="taken.example.com", max_running=1)
    before = (list(RunLimit.objects.values()), AuditEntry.objects.count())

    response = admin_client.post(ADD, limit_form(**fields))

    assert response.status_code == 200
    assert field in form_errors(response), form_errors(response)
    assert (list(RunLimit.objects.values()), AuditEntry.objects.count()) == before


def test_a_change_in_the_admin_is_audited_and_wakes_what_the_limit_held(
    admin_client, django_capture_on_commit_callbacks
):
    # given: a queue limit of 1 holding two executions
    job = handler_job("noop", name="held", queue=QUEUE)
    limit = limit_create(scope="queue", name=QUEUE, max_running=1)
    for _ in range(2):
        BatchLog.objects.create(
            job=job, trigger=Trigger.API, status=ExecutionStatus.QUEUED, held_by=limit.key
        )

    # when: raised to 5
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(
                change_url(limit),
                limit_form(scope="queue", name=QUEUE, max_running="5", max_per_second=""),
            )
    finally:
        queue_purge(QUEUE)

    # then
    assert response.status_code == 302, form_errors(response)
    limit.refresh_from_db()
    assert limit.max_running == 5
    assert AuditEntry.objects.get(action=AuditAction.CHANGED).changes == {"max_running": [1, 5]}
    assert not BatchLog.objects.filter(held_by=limit.key).exists()


def test_a_limit_deleted_in_the_admin_is_audited(admin_client):
    limit = limit_create(scope="queue", name="reports", max_running=1)

    response = admin_client.post(
        reverse("admin:batchjobs_runlimit_delete", args=[limit.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not RunLimit.objects.exists()
    assert AuditEntry.objects.filter(action=AuditAction.DELETED, object_id=limit.pk).exists()


def test_the_list_shows_each_limit_with_what_it_holds_and_runs(admin_client):
    # given
    reports = handler_job("noop", name="report", queue="reports")
    pinger = http_job("http://example.com/ping", name="ping")
    limit_create(scope="queue", name="reports", max_running=1)
    limit_create(scope="host", name="example.com", max_running=20, max_per_second=100)
    for job, status, held_by in [
        (reports, ExecutionStatus.QUEUED, "queue:reports"),
        (reports, ExecutionStatus.QUEUED, "queue:reports"),
        (reports, ExecutionStatus.STARTED, ""),
        (pinger, ExecutionStatus.STARTED, ""),
        (pinger, ExecutionStatus.STARTED, ""),
        (pinger, ExecutionStatus.QUEUED, "host:example.com"),
    ]:
        BatchLog.objects.create(job=job, trigger=Trigger.API, status=status, held_by=held_by)

    # when
    response = admin_client.get(CHANGELIST)

    # then
    assert response.status_code == 200
    rows = {
        (limit.scope, limit.name): (limit.max_running, limit.max_per_second, limit.waiting,
                                    limit.running)
        for limit in response.context["cl"].result_list
    }  # fmt: skip
    assert rows == {
        ("host", "example.com"): (20, 100, 1, 2),
        ("queue", "reports"): (1, None, 2, 1),
    }
    content = response.content.decode()
    for column in ("column-waiting", "column-running", "column-max_per_second"):
        assert column in content


def test_the_change_page_shows_the_counts(admin_client):
    limit = limit_create(scope="queue", name="reports", max_running=1)

    response = admin_client.get(change_url(limit))

    assert response.status_code == 200
    assert "field-waiting" in response.content.decode()


def test_staff_without_the_permission_cannot_add(staff_client):
    viewer = staff_client("view_runlimit")

    listed = viewer.get(CHANGELIST)
    refused = viewer.post(ADD, limit_form())

    assert listed.status_code == 200
    assert refused.status_code == 403
    assert not RunLimit.objects.exists()
