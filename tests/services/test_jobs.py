from datetime import timedelta

import pytest
from django.utils import timezone

from batchjobs.errors import Conflict, InvalidInput
from batchjobs.models import BatchJob, BatchLog, Trigger
from batchjobs.services.executions import execution_start
from batchjobs.services.jobs import job_create, job_update
from tests.support.factories import handler_job, http_job

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"http_url": "ftp://example.com/x"}, "http_url", "scheme must be http or https"),
        ({"http_url": "not a url"}, "http_url", "scheme must be http or https"),
        ({"http_url": "http://"}, "http_url", "no host"),
        ({"http_url": ""}, "http_url", "needs a URL"),
        ({"http_url": "http://10.1.2.3/x"}, "http_url", "non-public address"),
        ({"http_url": "http://[::ffff:169.254.169.254]/"}, "http_url", "non-public address"),
        ({"timeout_seconds": 0}, "timeout_seconds", "between 0.001 and"),
        ({"timeout_seconds": -5}, "timeout_seconds", "between 0.001 and"),
        ({"timeout_seconds": 7 * 86400 + 1}, "timeout_seconds", "between 0.001 and 604,800"),
        ({"timeout_seconds": float("nan")}, "timeout_seconds", "finite"),
        ({"timeout_seconds": float("inf")}, "timeout_seconds", "finite"),
        ({"max_attempts": 0}, "max_attempts", "between 1 and"),
        ({"max_attempts": 101}, "max_attempts", "between 1 and 100"),
        ({"max_attempts": float("inf")}, "max_attempts", "finite"),
        ({"priority": float("-inf")}, "priority", "finite"),
        ({"retry_backoff_seconds": 1e308}, "retry_backoff_seconds", "between 0 and"),
        ({"retry_backoff_max_seconds": 1e308}, "retry_backoff_max_seconds", "between 0 and"),
        ({"retry_backoff_seconds": float("nan")}, "retry_backoff_seconds", "finite"),
        ({"retention_days": 0}, "retention_days", "between 1 and"),
        ({"priority": 10}, "priority", "between 0 and 9"),  # job_priority_0_to_9
        ({"kind": "fax"}, "kind", "not a valid choice"),  # job_kind_known
        ({"overlap_policy": "maybe"}, "overlap_policy", "not a valid choice"),
        (
            {"retry_backoff_seconds": 10, "retry_backoff_max_seconds": 5},
            "retry_backoff_max_seconds",
            "not be below",
        ),
        ({"http_expected_status": "2xx"}, "http_expected_status", "not a status code"),
        ({"http_expected_status": "299-200"}, "http_expected_status", "low to high"),
        (
            {"http_assertion_kind": "regex", "http_assertion": "("},
            "http_assertion",
            "regular expression",
        ),
        (
            {
                "http_assertion_kind": "json_path",
                "http_assertion": "$.items.0",
                "http_assertion_value": "1",
            },
            "http_assertion",
            "list index goes in brackets",
        ),
        (
            {
                "http_assertion_kind": "json_path",
                "http_assertion": "$.x",
                "http_assertion_value": "not json",
            },
            "http_assertion_value",
            "as JSON",
        ),
        ({"http_headers": [{"name": "Bad Name", "value": "x"}]}, "http_headers", "header name"),
        ({"http_headers": [{"name": "X-A", "value": "a\nb"}]}, "http_headers", "one line"),
        (
            {"http_headers": [{"name": "Idempotency-Key", "value": "x"}]},
            "http_headers",
            "set by batchjobs",
        ),
        ({"http_headers": {"X-A": "b"}}, "http_headers", "Must be a list"),
        ({"priority": 12}, "priority", "between 0 and 9"),
        ({"name": "bad/name"}, "name", "Use letters"),
    ],
)
def test_bad_http_job_input_names_the_field_and_saves_nothing(fields, field, message):
    data = {"name": "job", "kind": "http", "http_url": "https://example.com/hook"} | fields
    with pytest.raises(InvalidInput) as raised:
        job_create(**data)
    assert field in raised.value.field_errors, raised.value.field_errors
    assert any(message in text for text in raised.value.field_errors[field]), raised.value
    assert "__all__" not in raised.value.field_errors  # never a constraint's name instead
    assert not BatchJob.objects.exists()


def test_a_json_path_assertion_may_leave_out_the_dollar():
    job = job_create(
        name="job", kind="http", http_url="https://example.com/hook",
        http_assertion_kind="json_path", http_assertion="data.items[0].ready",
        http_assertion_value="true",
    )  # fmt: skip

    assert BatchJob.objects.get(pk=job.pk).http_assertion == "data.items[0].ready"


def test_unknown_handler_is_refused_at_save():
    with pytest.raises(InvalidInput) as raised:
        job_create(name="j", kind="handler", handler_name="no.such.handler")
    assert "No handler named 'no.such.handler'" in raised.value.field_errors["handler_name"][0]
    assert not BatchJob.objects.exists()


def test_handler_params_are_validated_against_the_schema_at_save():
    with pytest.raises(InvalidInput) as raised:
        job_create(name="j", kind="handler", handler_name="sleep", params={"seconds": "ten"})
    assert raised.value.field_errors["params"] == ["seconds: 'ten' is not of type 'number'"]
    job = job_create(name="j", kind="handler", handler_name="sleep", params={"seconds": 1})
    assert job.params == {"seconds": 1}


def test_params_must_be_an_object():
    with pytest.raises(InvalidInput) as raised:
        job_create(name="j", kind="handler", handler_name="noop", params=["x"])
    assert "params" in raised.value.field_errors


def test_unknown_field_is_refused():
    with pytest.raises(InvalidInput) as raised:
        job_create(name="j", kind="handler", handler_name="noop", colour="blue")
    assert raised.value.field_errors == {"colour": ["Unknown field."]}


def test_duplicate_name_is_refused():
    handler_job("noop", name="same")
    with pytest.raises(InvalidInput) as raised:
        handler_job("noop", name="same")
    assert "name" in raised.value.field_errors


def test_failed_update_leaves_the_stored_job_unchanged():
    job = http_job("https://example.com/a")
    with pytest.raises(InvalidInput):
        job_update(job=job, http_url="gopher://example.com", timeout_seconds=-1)
    stored = BatchJob.objects.get(pk=job.pk)
    assert stored.http_url == "https://example.com/a"
    assert stored.timeout_seconds == 5


def test_loopback_is_allowed_only_when_allow_listed(settings):
    settings.BATCHJOBS_HTTP_ALLOWLIST = []
    with pytest.raises(InvalidInput):
        http_job("http://127.0.0.1:8000/x")
    settings.BATCHJOBS_HTTP_ALLOWLIST = ["127.0.0.1:8000"]
    assert http_job("http://127.0.0.1:8000/x").pk
    with pytest.raises(InvalidInput):
        http_job("http://127.0.0.1:8001/x")


def test_run_now_records_merged_params_and_refuses_bad_ones():
    job = handler_job("sleep", params={"seconds": 1})
    execution = execution_start(job=job, trigger=Trigger.CLI, params={"seconds": 2})
    assert execution.params == {"seconds": 2}
    assert execution.max_attempts == job.max_attempts
    with pytest.raises(InvalidInput) as raised:
        execution_start(job=job, trigger=Trigger.CLI, params={"seconds": -1})
    assert "params" in raised.value.field_errors
    assert BatchLog.objects.count() == 1


def test_run_now_of_a_disabled_job_is_refused():
    job = handler_job("noop", enabled=False)
    with pytest.raises(Conflict):
        execution_start(job=job, trigger=Trigger.API)


def test_same_idempotency_key_returns_the_same_execution():
    job = handler_job("noop")
    first = execution_start(job=job, trigger=Trigger.API, idempotency_key="k1")
    again = execution_start(job=job, trigger=Trigger.API, idempotency_key="k1")
    other = execution_start(job=job, trigger=Trigger.API, idempotency_key="k2")
    assert first.pk == again.pk != other.pk


def test_http_jobs_go_to_the_io_lane_unless_they_name_a_queue(settings):
    lane = http_job("https://example.com/a")
    named = http_job("https://example.com/b", queue="reports")
    handler = handler_job("noop")

    assert lane.queue == settings.BATCHJOBS_HTTP_QUEUE
    assert named.queue == "reports"
    assert handler.queue == settings.CELERY_TASK_DEFAULT_QUEUE
    assert lane.target_host == "example.com"
    assert handler.target_host == ""


def test_changing_a_jobs_own_limit_sends_the_runs_it_held(django_capture_on_commit_callbacks):
    job = handler_job("noop", max_running=1)
    held = execution_start(job=job, trigger=Trigger.API)
    BatchLog.objects.filter(pk=held.pk).update(
        held_by=f"job:{job.pk}",
        held_reason="waiting for a slot",
        next_attempt_at=timezone.now() + timedelta(seconds=30),
    )
    untouched = execution_start(job=handler_job("noop"), trigger=Trigger.API)
    BatchLog.objects.filter(pk=untouched.pk).update(held_by="queue:other")

    with django_capture_on_commit_callbacks(execute=True):
        job_update(job=job, max_running=2)

    held.refresh_from_db()
    assert held.held_by == "" and held.next_attempt_at <= timezone.now()  # sent now
    assert BatchLog.objects.get(pk=untouched.pk).held_by == "queue:other"
