"""The fire time in the admin: templates checked on the job form, a logical time on the run
form, the logical time, data interval and request as sent on the execution page."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from batchjobs.models import BatchJob, BatchLog
from batchjobs.secrets import SECRET_MASK
from tests.support.admin_forms import form_errors, job_form_data
from tests.support.factories import handler_job, http_job
from tests.support.runs import run_in_process

pytestmark = pytest.mark.django_db

ADD = reverse("admin:batchjobs_batchjob_add")
BASE = "http://127.0.0.1:8000/demo/ping"


def run_url(job: BatchJob) -> str:
    return reverse("admin:batchjobs_batchjob_run", args=[job.pk])


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"http_url": BASE + "?d={{ yesterday }}"}, "http_url", "unknown variable 'yesterday'"),
        ({"http_url": "http://127.0.0.1:{{ params.port }}/x"}, "http_url",
         "scheme and host must be written out"),
        ({"http_headers": '[{"name": "X-D", "value": "{{ logical_time | iso }}"}]'},
         "http_headers", "http_headers[0].value: unknown filter 'iso'"),
        ({"http_body": "{{ params.a | default }}"}, "http_body", "needs an argument"),
    ],
)  # fmt: skip
def test_a_bad_template_is_a_field_error_and_nothing_is_saved(admin_client, fields, field, message):
    response = admin_client.post(ADD, job_form_data(**fields))

    assert response.status_code == 200
    assert any(message in error for error in form_errors(response)[field]), form_errors(response)
    assert not BatchJob.objects.filter(name="nightly-report").exists()


def test_the_run_form_takes_a_logical_time_and_names_a_bad_one(admin_client):
    job = handler_job("sleep", name="sleeper", params={"seconds": 0})

    refused = admin_client.post(run_url(job), {"params": "{}", "logical_time": "soon"})
    started = admin_client.post(
        run_url(job), {"params": "{}", "logical_time": "2027-01-04T00:00:00+09:00"}
    )

    assert refused.status_code == 200 and refused.context["form"].errors["logical_time"]
    assert started.status_code == 302
    assert BatchLog.objects.get(job=job).logical_time == datetime(2027, 1, 3, 15, tzinfo=UTC)


def test_the_execution_page_shows_the_period_and_the_request_as_sent(admin_client, httpserver):
    httpserver.expect_request("/p").respond_with_data("ok")
    job = http_job(
        httpserver.url_for("/p") + '?day={{ logical_time | date:"%Y-%m-%d" }}',
        http_headers=[{"name": "X-Key", "value": "hidden-value-{{ params.k }}", "secret": True}],
        params={"k": "shown"},
    )
    admin_client.post(run_url(job), {"params": "{}", "logical_time": "2027-01-04T00:00:00Z"})
    execution = run_in_process(BatchLog.objects.get(job=job))

    page = admin_client.get(reverse("admin:batchjobs_batchlog_change", args=[execution.pk]))

    content = page.content.decode()
    assert "Logical time" in content and "Data interval start" in content
    assert "?day=2027-01-04" in content
    assert SECRET_MASK in content and "hidden-value" not in content
