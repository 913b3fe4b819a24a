"""The `sql` handler runs any statement on the databases it is opened to: creating, changing,
scheduling or starting a job that uses it takes `batchjobs.use_sql_handler`, on top of the
usual job permissions (issue #11, 9). Checked by the services, so the API and the admin agree."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from batchjobs.models import BatchJob, BatchLog, BatchSchedule
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db(databases=["default", "warehouse"])

JOBS = reverse("api:job-list")
SQL_JOB = {
    "name": "warehouse-cleanup",
    "kind": "handler",
    "handler_name": "sql",
    "params": {"database": "warehouse", "statement": "DELETE FROM batchjobs_warehousecustomer"},
}
NEEDS_IT = "the 'sql' handler needs the permission batchjobs.use_sql_handler"


def grant_sql(user) -> None:
    user.user_permissions.add(Permission.objects.get(codename="use_sql_handler"))


@pytest.fixture
def sql_job():
    return handler_job("sql", params=SQL_JOB["params"])  # saved by the system


def assert_refused(response) -> None:
    assert response.status_code == 403, response.json()
    assert response.json()["code"] == "permission_denied"
    assert response.json()["errors"] == {"handler_name": [NEEDS_IT]}


def test_an_operator_without_the_permission_cannot_create_an_sql_job(api):
    response = api("operator").post(JOBS, SQL_JOB, format="json")

    assert_refused(response)
    assert not BatchJob.objects.exists()


def test_an_operator_without_the_permission_cannot_start_an_sql_job(api, sql_job):
    response = api("operator").post(reverse("api:job-start", args=[sql_job.pk]), format="json")

    assert_refused(response)
    assert not BatchLog.objects.exists()


def test_an_operator_without_the_permission_cannot_change_an_sql_job(api, sql_job):
    response = api("operator").patch(
        reverse("api:job-detail", args=[sql_job.pk]),
        {"params": {**SQL_JOB["params"], "statement": "DELETE FROM auth_user"}},
        format="json",
    )

    assert_refused(response)
    sql_job.refresh_from_db()
    assert sql_job.params == SQL_JOB["params"]


def test_an_operator_without_the_permission_cannot_turn_a_job_into_an_sql_job(api):
    job = handler_job("noop")
    response = api("operator").patch(
        reverse("api:job-detail", args=[job.pk]),
        {"handler_name": "sql", "params": SQL_JOB["params"]},
        format="json",
    )

    assert_refused(response)
    job.refresh_from_db()
    assert job.handler_name == "noop"


def test_an_operator_without_the_permission_cannot_schedule_an_sql_job(api, sql_job):
    # a schedule's parameters go over the job's: it could run any statement
    response = api("operator").post(
        reverse("api:schedule-list"),
        {"job": sql_job.pk, "kind": "interval", "interval_every": 1, "interval_unit": "hours",
         "params": {"statement": "DELETE FROM auth_user"}},
        format="json",
    )  # fmt: skip

    assert_refused(response)
    assert not BatchSchedule.objects.exists()


def test_with_the_permission_an_operator_creates_and_starts_an_sql_job(api, make_user):
    # given
    grant_sql(make_user("operator"))
    client = api("operator")

    # when
    created = client.post(JOBS, SQL_JOB, format="json")
    started = client.post(reverse("api:job-start", args=[created.json()["id"]]), format="json")

    # then
    assert created.status_code == 201, created.json()
    assert started.status_code == 202, started.json()


def test_a_superuser_holds_it_implicitly(api):
    assert api("admin").post(JOBS, SQL_JOB, format="json").status_code == 201


def test_other_handlers_need_no_extra_permission(api):
    response = api("operator").post(
        JOBS, {"name": "nap", "kind": "handler", "handler_name": "noop"}, format="json"
    )
    assert response.status_code == 201, response.json()
