"""The admin saves and runs jobs through the services, so it asks for
`batchjobs.use_sql_handler` as the API does, and shows the refusal next to the field
(issue #11, 9)."""

import pytest
from django.urls import reverse
from django.utils.html import escape

from batchjobs.models import BatchJob, BatchLog
from tests.support.admin_forms import job_form_data
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db(databases=["default", "warehouse"])

NEEDS_IT = "the 'sql' handler needs the permission batchjobs.use_sql_handler"
SQL_PARAMS = {"database": "warehouse", "statement": "DELETE FROM batchjobs_warehousecustomer"}


@pytest.fixture
def sql_job():
    return handler_job("sql", params=SQL_PARAMS)  # saved by the system


ADMIN_SQL_FORM = job_form_data(
    name="warehouse-cleanup",
    kind="handler",
    http_url="",
    handler_name="sql",
    params='{"database": "warehouse", "statement": "DELETE FROM batchjobs_warehousecustomer"}',
)


def test_the_admin_refuses_an_sql_job_without_the_permission_next_to_the_field(staff_client):
    client = staff_client("add_batchjob", "change_batchjob", "view_batchjob", "run_batchjob")

    response = client.post(reverse("admin:batchjobs_batchjob_add"), ADMIN_SQL_FORM)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["handler_name"] == [NEEDS_IT]
    assert not BatchJob.objects.exists()


def test_the_admin_saves_an_sql_job_with_the_permission(staff_client):
    client = staff_client("add_batchjob", "change_batchjob", "view_batchjob", "use_sql_handler")

    response = client.post(reverse("admin:batchjobs_batchjob_add"), ADMIN_SQL_FORM)

    assert response.status_code == 302
    assert BatchJob.objects.get().handler_name == "sql"


def test_the_admin_run_page_refuses_an_sql_job_without_the_permission(staff_client, sql_job):
    client = staff_client("view_batchjob", "run_batchjob")

    response = client.post(
        reverse("admin:batchjobs_batchjob_run", args=[sql_job.pk]), {"params": "{}"}
    )

    assert response.status_code == 200
    assert escape(NEEDS_IT) in response.content.decode()
    assert not BatchLog.objects.exists()
