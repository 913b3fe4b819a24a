from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from batchjobs.models import (
    BatchJob,
    BatchLog,
    BatchSchedule,
    ExecutionStatus,
    JobNotification,
    Trigger,
)
from batchjobs.secrets import SECRET_MASK, secret_decrypt
from tests.support.admin_forms import form_errors, job_form_data
from tests.support.factories import batch_start, handler_job, http_job
from tests.support.runs import run_in_process

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:batchjobs_batchjob_changelist")
ADD = reverse("admin:batchjobs_batchjob_add")
LOCAL_URL = "http://127.0.0.1:8000/demo/ping"


def change_url(job: BatchJob) -> str:
    return reverse("admin:batchjobs_batchjob_change", args=[job.pk])


def run_url(job: BatchJob) -> str:
    return reverse("admin:batchjobs_batchjob_run", args=[job.pk])


def finished_execution(job: BatchJob, status: ExecutionStatus) -> BatchLog:
    return BatchLog.objects.create(
        job=job, trigger=Trigger.SCHEDULE, status=status, attempts=1, max_attempts=3
    )


# --- list -------------------------------------------------------------------------------------


def test_list_shows_target_latest_execution_and_schedule_count(admin_client):
    # given
    pinged = http_job(LOCAL_URL, name="ping")
    sleeper = handler_job("sleep", name="sleeper", params={"seconds": 1})
    BatchSchedule.objects.create(job=pinged, kind="interval", interval_every=5)
    BatchSchedule.objects.create(job=pinged, kind="cron", cron_expression="0 3 * * *")
    finished_execution(pinged, ExecutionStatus.COMPLETED)
    latest = finished_execution(pinged, ExecutionStatus.FAILED)

    # when
    response = admin_client.get(CHANGELIST)

    # then
    assert response.status_code == 200
    rows = {job.name: job for job in response.context["cl"].result_list}
    assert rows["ping"].schedule_count == 2
    assert rows["ping"].last_execution_status == ExecutionStatus.FAILED
    assert rows["sleeper"].schedule_count == 0
    assert rows["sleeper"].last_execution_id is None
    content = response.content.decode()
    assert f"GET {LOCAL_URL}" in content
    assert reverse("admin:batchjobs_batchlog_change", args=[latest.pk]) in content
    assert sleeper.handler_name in content


def test_list_search_and_kind_filter(admin_client):
    http_job(LOCAL_URL, name="nightly-export")
    handler_job("noop", name="hourly-noop")

    searched = admin_client.get(CHANGELIST, {"q": "nightly"})
    filtered = admin_client.get(CHANGELIST, {"kind__exact": "handler"})

    assert [job.name for job in searched.context["cl"].result_list] == ["nightly-export"]
    assert [job.name for job in filtered.context["cl"].result_list] == ["hourly-noop"]


# --- add and change: validation ----------------------------------------------------------------


def test_add_job_with_inline_schedule(admin_client, admin_user):
    data = job_form_data(
        **{
            "schedules-TOTAL_FORMS": "1",
            "schedules-0-kind": "cron",
            "schedules-0-cron_expression": "*/15 * * * *",
            "schedules-0-timezone": "Europe/Berlin",
            "schedules-0-interval_unit": "minutes",
        }
    )

    response = admin_client.post(ADD, data)

    assert response.status_code == 302, form_errors(response)
    job = BatchJob.objects.get(name="nightly-report")
    assert job.created_by == admin_user
    assert job.http_headers == [] and job.params == {}
    schedule = job.schedules.get()
    assert (schedule.cron_expression, schedule.timezone) == ("*/15 * * * *", "Europe/Berlin")
    # Saved through schedule_save, so beat has a next fire to wait for.
    assert schedule.next_fire_at is not None and schedule.next_fire_at.minute % 15 == 0


def test_invalid_inline_schedule_saves_neither_job_nor_schedule(admin_client):
    data = job_form_data(
        **{
            "schedules-TOTAL_FORMS": "1",
            "schedules-0-kind": "cron",
            "schedules-0-cron_expression": "61 * * * *",
            "schedules-0-timezone": "UTC",
            "schedules-0-interval_unit": "minutes",
        }
    )

    response = admin_client.post(ADD, data)

    assert response.status_code == 200
    inline_errors = response.context["inline_admin_formsets"][0].formset.errors
    assert "minute field: 61 is out of range 0–59" in inline_errors[0]["cron_expression"][0]
    assert not BatchJob.objects.exists()
    assert not BatchSchedule.objects.exists()


def test_inline_once_schedule_in_the_past_is_refused_and_saves_nothing(admin_client):
    an_hour_ago = timezone.now() - timedelta(hours=1)
    data = job_form_data(
        **{
            "schedules-TOTAL_FORMS": "1",
            "schedules-0-kind": "once",
            "schedules-0-run_at_0": f"{an_hour_ago:%Y-%m-%d}",
            "schedules-0-run_at_1": f"{an_hour_ago:%H:%M:%S}",
            "schedules-0-timezone": "UTC",
            "schedules-0-interval_unit": "minutes",
        }
    )

    response = admin_client.post(ADD, data)

    assert response.status_code == 200
    inline_errors = response.context["inline_admin_formsets"][0].formset.errors
    assert "in the past" in inline_errors[0]["run_at"][0]
    assert not BatchJob.objects.exists()


def notification_inline(**fields: str | bool) -> dict[str, str]:
    """The job form with one inline notification; `fields` override it (False: left out)."""
    notification = {
        "channel": "email",
        "enabled": "on",
        "target": "ops@example.com",
        "on_failure": "on",
        "missed_grace_seconds": "300",
    } | fields
    return job_form_data(
        **{"notifications-TOTAL_FORMS": "1"},
        **{f"notifications-0-{name}": value for name, value in notification.items()},
    )


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"target": "ops@example.com, not-an-address"}, "target", "is not an email address"),
        (
            {"channel": "webhook", "target": "ftp://example.com/hook"},
            "target",
            "scheme must be http or https",
        ),
        ({"on_failure": False}, "on_failure", "Choose at least one event"),
    ],
)
def test_invalid_inline_notification_is_a_field_error_and_saves_nothing(
    admin_client, fields, field, message
):
    # The notification service's rules run in the inline's form (the model has no clean()).
    response = admin_client.post(ADD, notification_inline(**fields))

    assert response.status_code == 200
    inline_errors = response.context["inline_admin_formsets"][1].formset.errors
    assert any(message in error for error in inline_errors[0][field]), inline_errors
    assert not BatchJob.objects.exists()
    assert not JobNotification.objects.exists()


def test_valid_inline_notification_is_saved_with_the_job(admin_client):
    response = admin_client.post(ADD, notification_inline())

    assert response.status_code == 302, response.context["inline_admin_formsets"][1].formset.errors
    assert JobNotification.objects.get().target == "ops@example.com"


def test_missing_url_is_the_url_field_error_not_a_constraint_name(admin_client):
    response = admin_client.post(ADD, job_form_data(http_url=""))

    assert response.status_code == 200
    assert form_errors(response)["http_url"] == ["An HTTP job needs a URL."]
    assert "__all__" not in form_errors(response)  # the rules run before the constraints


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/report.csv", "scheme must be http or https, not 'ftp'"),
        ("not a url", "scheme must be http or https"),
        ("http://169.254.169.254/latest/meta-data", "a non-public address"),
    ],
)
def test_invalid_url_is_a_field_error_and_saves_nothing(admin_client, url, message):
    response = admin_client.post(ADD, job_form_data(http_url=url))

    assert response.status_code == 200
    assert message in " ".join(form_errors(response)["http_url"])
    assert not BatchJob.objects.exists()


def test_unknown_handler_is_a_field_error(admin_client):
    response = admin_client.post(ADD, job_form_data(kind="handler", handler_name="no.such"))

    assert response.status_code == 200
    assert "No handler named 'no.such'" in form_errors(response)["handler_name"][0]
    assert not BatchJob.objects.exists()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ('{"seconds": ', "Enter a valid JSON."),
        ('{"seconds": "soon"}', "'soon' is not of type 'number'"),
        ("{}", "'seconds' is a required property"),
    ],
)
def test_handler_params_errors_are_field_errors(admin_client, params, message):
    data = job_form_data(kind="handler", handler_name="sleep", params=params)

    response = admin_client.post(ADD, data)

    assert response.status_code == 200
    assert any(message in error for error in form_errors(response)["params"])
    assert not BatchJob.objects.exists()


@pytest.mark.parametrize("timeout", ["0", "-5"])
def test_timeout_must_be_positive(admin_client, timeout):
    response = admin_client.post(ADD, job_form_data(timeout_seconds=timeout))

    assert "timeout_seconds" in form_errors(response)
    assert not BatchJob.objects.exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("timeout_seconds", "604801", "between 0.001 and 604,800 seconds"),
        ("retry_backoff_seconds", "1e308", "between 0 and 31,536,000 seconds (365 days)"),
        ("retry_backoff_max_seconds", "1e308", "between 0 and 31,536,000 seconds (365 days)"),
        ("retry_backoff_seconds", "nan", "Enter a number."),
        ("timeout_seconds", "inf", "Enter a number."),
        ("max_attempts", "101", "between 1 and 100"),
        ("max_attempts", "2147483648", "between 1 and 100"),
        ("priority", "10", "between 0 and 9"),
    ],
)
def test_numbers_out_of_bounds_are_field_errors_and_save_nothing(
    admin_client, field, value, message
):
    response = admin_client.post(ADD, job_form_data(**{field: value}))

    assert response.status_code == 200
    assert any(message in error for error in form_errors(response)[field]), form_errors(response)
    assert not BatchJob.objects.exists()


def test_rejected_change_leaves_the_stored_job_as_it_was(admin_client):
    job = http_job(LOCAL_URL, name="ping", description="before")

    response = admin_client.post(
        change_url(job), job_form_data(name="ping", description="after", http_url="ftp://x/")
    )

    assert response.status_code == 200
    job.refresh_from_db()
    assert (job.description, job.http_url) == ("before", LOCAL_URL)


def test_change_form_shows_only_the_fieldset_of_the_kind_through_its_classes(admin_client):
    job = handler_job("noop", name="noop-job")

    content = admin_client.get(change_url(job)).content.decode()

    assert "kind-http" in content and "kind-handler" in content
    assert "batchjobs/job_form.js" in content  # which hides the other kinds' fieldsets


# --- secret headers ----------------------------------------------------------------------------

SECRET = "Bearer s3cr3t-t0ken"


@pytest.fixture
def job_with_secret():
    return http_job(
        LOCAL_URL,
        name="with-secret",
        http_headers=[
            {"name": "Authorization", "value": SECRET, "secret": True},
            {"name": "Accept", "value": "application/json", "secret": False},
        ],
    )


def masked_headers_json(*, secret: bool = True) -> str:
    return (
        f'[{{"name": "Authorization", "value": "{SECRET_MASK}", "secret": {str(secret).lower()}}},'
        ' {"name": "Accept", "value": "application/json", "secret": false}]'
    )


def test_change_form_masks_secret_header_values(admin_client, job_with_secret):
    response = admin_client.get(change_url(job_with_secret))

    content = response.content.decode()
    assert response.status_code == 200
    assert "s3cr3t" not in content
    assert SECRET_MASK in content
    assert "application/json" in content


def test_saving_with_the_mask_unchanged_keeps_the_stored_secret(admin_client, job_with_secret):
    data = job_form_data(
        name="with-secret", description="edited", http_headers=masked_headers_json()
    )

    response = admin_client.post(change_url(job_with_secret), data)

    assert response.status_code == 302, form_errors(response)
    job_with_secret.refresh_from_db()
    assert job_with_secret.description == "edited"
    header = job_with_secret.http_headers[0]
    assert (header["name"], header["secret"]) == ("Authorization", True)
    assert secret_decrypt(header["value"]) == SECRET  # stored encrypted, unchanged


def test_saving_a_new_secret_value_replaces_the_stored_one(admin_client, job_with_secret):
    headers = masked_headers_json().replace(SECRET_MASK, "Bearer rotated")

    response = admin_client.post(
        change_url(job_with_secret), job_form_data(name="with-secret", http_headers=headers)
    )

    assert response.status_code == 302, form_errors(response)
    job_with_secret.refresh_from_db()
    assert secret_decrypt(job_with_secret.http_headers[0]["value"]) == "Bearer rotated"


def test_mask_on_a_header_no_longer_secret_is_refused(admin_client, job_with_secret):
    data = job_form_data(name="with-secret", http_headers=masked_headers_json(secret=False))

    response = admin_client.post(change_url(job_with_secret), data)

    assert response.status_code == 200
    assert "keep the header secret or enter its value" in form_errors(response)["http_headers"][0]
    assert "s3cr3t" not in response.content.decode()
    job_with_secret.refresh_from_db()
    assert secret_decrypt(job_with_secret.http_headers[0]["value"]) == SECRET


def test_view_only_user_sees_secret_masked(staff_client, job_with_secret):
    client = staff_client("view_batchjob")

    response = client.get(change_url(job_with_secret))

    content = response.content.decode()
    assert response.status_code == 200
    assert "s3cr3t" not in content
    assert SECRET_MASK in content


# --- run now -----------------------------------------------------------------------------------


def test_run_now_action_queues_a_manual_execution(admin_client, admin_user):
    job = handler_job("sleep", name="sleeper", params={"seconds": 1})

    response = admin_client.post(
        CHANGELIST, {"action": "run_now", "_selected_action": [job.pk]}, follow=True
    )

    execution = BatchLog.objects.get(job=job)
    assert execution.status == ExecutionStatus.QUEUED
    assert execution.trigger == Trigger.MANUAL
    assert execution.created_by == admin_user
    assert execution.params == {"seconds": 1}
    assert f"#{execution.pk} sleeper" in response.content.decode()


def test_run_now_action_reports_a_disabled_job_and_starts_nothing(admin_client):
    job = handler_job("noop", name="off", enabled=False)

    response = admin_client.post(
        CHANGELIST, {"action": "run_now", "_selected_action": [job.pk]}, follow=True
    )

    assert "Job &#x27;off&#x27; was not started" in response.content.decode()
    assert not BatchLog.objects.exists()


def test_run_view_queues_an_execution_with_the_given_params(admin_client):
    job = handler_job("sleep", name="sleeper", params={"seconds": 1})

    response = admin_client.post(run_url(job), {"params": '{"seconds": 0}'})

    execution = BatchLog.objects.get(job=job)
    assert response.status_code == 302
    assert response.url == reverse("admin:batchjobs_batchlog_change", args=[execution.pk])
    assert (execution.status, execution.trigger) == (ExecutionStatus.QUEUED, Trigger.MANUAL)
    assert execution.params == {"seconds": 0}


def test_run_view_shows_the_job_and_a_params_box(admin_client):
    job = handler_job("sleep", name="sleeper", params={"seconds": 1})

    response = admin_client.get(run_url(job))

    assert response.status_code == 200
    content = response.content.decode()
    assert 'name="params"' in content
    assert "&quot;seconds&quot;: 1" in content


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ('{"seconds": ', "Enter a valid JSON."),
        ("[1, 2]", "Must be a JSON object."),
        ('{"seconds": "soon"}', "'soon' is not of type 'number'"),
    ],
)
def test_run_view_params_errors_show_next_to_the_field(admin_client, params, message):
    job = handler_job("sleep", name="sleeper", params={"seconds": 1})

    response = admin_client.post(run_url(job), {"params": params})

    assert response.status_code == 200
    assert any(message in error for error in response.context["form"].errors["params"])
    assert not BatchLog.objects.exists()


def test_run_view_refuses_a_disabled_job(admin_client):
    job = handler_job("noop", name="off", enabled=False)

    response = admin_client.post(run_url(job), {"params": "{}"})

    assert response.status_code == 200
    assert "is disabled" in response.context["form"].non_field_errors()[0]
    assert not BatchLog.objects.exists()


def test_run_now_of_a_completed_batch_instance_is_refused_as_the_api_refuses_it(
    admin_client, admin_user
):
    # given: the instance of tests.numbers its default parameters make has completed
    completed = run_in_process(batch_start("tests.numbers", {"run": 31, "count": 3}))
    assert completed.status == ExecutionStatus.COMPLETED
    job = BatchJob.objects.get(name="tests.numbers")
    job.params = {"run": 31, "count": 3}
    job.save(update_fields=["params"])
    api = APIClient()
    api.force_authenticate(admin_user)

    # when the admin's Run now (the action, and the run page) and the API start it again
    action = admin_client.post(
        CHANGELIST, {"action": "run_now", "_selected_action": [job.pk]}, follow=True
    )
    page = admin_client.post(run_url(job), {"params": "{}"})
    by_api = api.post(reverse("api:job-start", args=[job.pk]), {}, format="json")

    # then each door refuses it, with the one message the operator words
    assert by_api.status_code == 409
    refusal = by_api.json()["detail"]
    assert "already completed" in refusal
    shown = [str(message) for message in action.context["messages"]]
    assert shown == [f"Job 'tests.numbers' was not started: {refusal}"]
    assert page.context["form"].non_field_errors() == [refusal]
    assert BatchLog.objects.filter(job=job).count() == 1


def test_user_without_run_permission_is_not_offered_run_now(staff_client):
    job = handler_job("noop", name="noop-job")
    client = staff_client("view_batchjob", "change_batchjob")

    changelist = client.get(CHANGELIST)
    change_page = client.get(change_url(job))
    run_page = client.get(run_url(job))
    client.post(CHANGELIST, {"action": "run_now", "_selected_action": [job.pk]})

    actions = dict(changelist.context["action_form"].fields["action"].choices)
    assert "run_now" not in actions and "disable" in actions
    assert run_url(job) not in change_page.content.decode()
    assert run_page.status_code == 403
    assert not BatchLog.objects.exists()


def test_user_with_run_permission_is_offered_run_now(staff_client):
    job = handler_job("noop", name="noop-job")
    client = staff_client("view_batchjob", "run_batchjob")

    changelist = client.get(CHANGELIST)
    change_page = client.get(change_url(job))
    run = client.post(run_url(job), {"params": "{}"})

    assert "run_now" in dict(changelist.context["action_form"].fields["action"].choices)
    assert run_url(job) in change_page.content.decode()
    assert BatchLog.objects.filter(job=job, trigger=Trigger.MANUAL).count() == 1
    # Without view_batchlog the user is sent back to the job, not to a page they cannot see.
    assert run.url == change_url(job)


def test_run_permission_alone_does_not_open_the_run_page(staff_client):
    job = handler_job("noop", name="noop-job")

    response = staff_client("run_batchjob").post(run_url(job), {"params": "{}"})

    assert response.status_code == 403
    assert not BatchLog.objects.exists()


def test_deleting_a_job_from_the_list_deletes_its_schedules_and_executions(admin_client):
    job = handler_job("noop", name="doomed")
    BatchSchedule.objects.create(job=job, kind="interval", interval_every=5)
    finished_execution(job, ExecutionStatus.COMPLETED)

    response = admin_client.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": [job.pk], "post": "yes"}
    )

    assert response.status_code == 302
    assert not BatchJob.objects.exists()
    assert not BatchSchedule.objects.exists()
    assert not BatchLog.objects.exists()


# --- enable / disable --------------------------------------------------------------------------


def test_disable_and_enable_actions(admin_client):
    first = handler_job("noop", name="first")
    second = handler_job("noop", name="second")

    admin_client.post(CHANGELIST, {"action": "disable", "_selected_action": [first.pk, second.pk]})
    disabled = set(BatchJob.objects.filter(enabled=False).values_list("name", flat=True))
    admin_client.post(CHANGELIST, {"action": "enable", "_selected_action": [second.pk]})

    assert disabled == {"first", "second"}
    assert set(BatchJob.objects.filter(enabled=True).values_list("name", flat=True)) == {"second"}


def test_test_fire_calls_the_endpoint_once_and_shows_request_and_response(admin_client, httpserver):
    # given an HTTP job with a secret header
    httpserver.expect_request("/hook").respond_with_data("pong from the hook")
    secret = {"name": "X-Key", "value": "t0p-s3cret", "secret": True}
    job = http_job(httpserver.url_for("/hook"), http_headers=[secret])
    url = reverse("admin:batchjobs_batchjob_test_fire", args=[job.pk])
    assert "Test fire" in admin_client.get(reverse("admin:batchjobs_batchjob_change",
                                                   args=[job.pk])).content.decode()  # fmt: skip
    # when
    page = admin_client.post(url).content.decode()
    # then one real call, shown with its response, the secret masked, nothing recorded
    assert "Outcome: SUCCEEDED" in page and "pong from the hook" in page
    assert "t0p-s3cret" not in page
    request, _ = httpserver.log[-1]
    assert request.headers["X-Key"] == "t0p-s3cret"
    assert not BatchLog.objects.filter(job=job).exists()
