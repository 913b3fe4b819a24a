"""Extreme numbers in every numeric field of every write endpoint (issue #11; run limits, issue
#13): never a 500; a refused request writes nothing (rows and audit trail alike); an accepted
value is one the code can compute with (next fire, preview, retry delay, a limit's bounds); and
firing still works afterwards."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.urls import reverse

from batchjobs.execution.retry import retry_delay
from batchjobs.models import AuditEntry, BatchJob, BatchLog, BatchSchedule, RunLimit, Trigger
from batchjobs.rules.bounds import MAX_PER_SECOND_LIMIT, MAX_RUNNING_LIMIT
from batchjobs.scheduling.fire_times import schedule_next_fire
from batchjobs.scheduling.firing import schedules_fire_due
from batchjobs.services.limits import limit_create
from batchjobs.services.schedules import schedule_create, schedule_preview
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db

JOB_NUMBERS = (
    "timeout_seconds", "max_attempts", "retry_backoff_seconds", "retry_backoff_max_seconds",
    "max_running", "priority",
)  # fmt: skip
LIMIT_NUMBERS = {"max_running": MAX_RUNNING_LIMIT, "max_per_second": MAX_PER_SECOND_LIMIT}
SCHEDULE_NUMBERS = (
    "interval_every", "max_runs", "misfire_grace_seconds", "catch_up_window_seconds",
    "catch_up_max", "jitter_seconds",
)  # fmt: skip
UNITS = ("seconds", "minutes", "hours", "days")

# (label, the JSON text of the value): NaN and Infinity as Python's json.dumps writes them
# (not JSON, but what a Python client sends) and as strings.
EXTREMES = [
    ("zero", "0"),
    ("minus-one", "-1"),
    ("int32-max", str(2**31 - 1)),
    ("int64", str(2**63)),
    ("float-max", "1e308"),
    ("float-min", "-1e308"),
    ("nan-literal", json.dumps(float("nan"))),
    ("nan-string", '"NaN"'),
    ("infinity-literal", json.dumps(float("inf"))),
    ("infinity-string", '"Infinity"'),
]

SOON = datetime.now(UTC) + timedelta(days=1)


def body_with(fields: dict[str, Any], field: str, raw: str) -> str:
    """`fields` as JSON with `field` set to the raw JSON text `raw` (which may be NaN)."""
    text = json.dumps({**fields, field: "__value__"}, default=str)
    return text.replace('"__value__"', raw)


def send(client, method: str, url: str, body: str):
    return client.generic(method, url, body, content_type="application/json")


def table_state() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (BatchJob, BatchSchedule, BatchLog, AuditEntry, RunLimit)
    }


def assert_computable_schedule(schedule: BatchSchedule) -> None:
    """The stored schedule's fire times can be computed: no exception, a datetime or None."""
    schedule.refresh_from_db()
    now = datetime.now(UTC)
    assert schedule.next_fire_at is None or isinstance(schedule.next_fire_at, datetime)
    schedule_next_fire(schedule=schedule, after=now)
    schedule_next_fire(schedule=schedule, after=datetime(9999, 12, 30, tzinfo=UTC))
    schedule_preview(schedule=schedule, count=3)


def assert_computable_job(job: BatchJob) -> None:
    job.refresh_from_db()
    timedelta(seconds=job.timeout_seconds)
    for failed_attempt in (1, job.max_attempts, 1000):
        assert retry_delay(job, failed_attempt=failed_attempt) >= timedelta(0)


def assert_outcome(response, before: dict[str, int], field: str) -> bool:
    """Never a 500; a refusal names the field (or the body, for a NaN that is not JSON) and
    writes nothing. True when accepted."""
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert response.status_code == 400, response.content
        errors = response.json()["errors"]
        assert field in errors or "not JSON compliant" in str(errors.get("body")), errors
        assert table_state() == before
        return False
    return True


@pytest.mark.parametrize(("label", "raw"), EXTREMES)
@pytest.mark.parametrize("field", JOB_NUMBERS)
def test_job_create(api, field, label, raw):
    before = table_state()
    body = body_with({"name": "fuzz", "kind": "handler", "handler_name": "noop"}, field, raw)

    response = send(api("operator"), "POST", reverse("api:job-list"), body)

    if assert_outcome(response, before, field):
        assert_computable_job(BatchJob.objects.get(name="fuzz"))


@pytest.mark.parametrize(("label", "raw"), EXTREMES)
@pytest.mark.parametrize("field", JOB_NUMBERS)
def test_job_update(api, field, label, raw):
    job = handler_job("noop")
    stored = BatchJob.objects.filter(pk=job.pk).values().get()
    before = table_state()

    response = send(
        api("operator"),
        "PATCH",
        reverse("api:job-detail", args=[job.pk]),
        body_with({}, field, raw),
    )

    if assert_outcome(response, before, field):
        assert_computable_job(job)
    else:
        assert BatchJob.objects.filter(pk=job.pk).values().get() == stored


def assert_bounded_limit(limit: RunLimit) -> None:
    limit.refresh_from_db()
    for field, most in LIMIT_NUMBERS.items():
        value = getattr(limit, field)
        assert value is None or (isinstance(value, int) and 1 <= value <= most), (field, value)


@pytest.mark.parametrize(("label", "raw"), EXTREMES)
@pytest.mark.parametrize("field", LIMIT_NUMBERS)
def test_limit_create(api, field, label, raw):
    before = table_state()
    body = body_with({"scope": "host", "name": "fuzz.example.com"}, field, raw)

    response = send(api("admin"), "POST", reverse("api:limit-list"), body)

    if assert_outcome(response, before, field):
        assert_bounded_limit(RunLimit.objects.get(pk=response.json()["id"]))


@pytest.mark.parametrize(("label", "raw"), EXTREMES)
@pytest.mark.parametrize("field", LIMIT_NUMBERS)
def test_limit_update(api, field, label, raw):
    limit = limit_create(scope="host", name="fuzz.example.com", max_running=5, max_per_second=5)
    stored = RunLimit.objects.filter(pk=limit.pk).values().get()
    before = table_state()

    response = send(
        api("admin"),
        "PATCH",
        reverse("api:limit-detail", args=[limit.pk]),
        body_with({}, field, raw),
    )

    if assert_outcome(response, before, field):
        assert_bounded_limit(limit)
    else:
        assert RunLimit.objects.filter(pk=limit.pk).values().get() == stored


def schedule_fields(field: str, unit: str) -> dict[str, Any]:
    """A valid schedule around `field`: an interval in `unit` when the field is its length,
    else a once-schedule a day ahead (a cron for the misfire and catch-up fields)."""
    if field == "interval_every":
        return {"kind": "interval", "interval_unit": unit}
    if field in ("misfire_grace_seconds", "catch_up_window_seconds", "catch_up_max"):
        return {"kind": "cron", "cron_expression": "*/5 * * * *", "misfire_policy": "catch_up"}
    return {"kind": "once", "run_at": SOON.isoformat()}


SCHEDULE_CASES = [
    (field, unit)
    for field in SCHEDULE_NUMBERS
    for unit in (UNITS if field == "interval_every" else ("minutes",))
]


@pytest.mark.parametrize(("label", "raw"), EXTREMES)
@pytest.mark.parametrize(("field", "unit"), SCHEDULE_CASES)
def test_schedule_create(api, field, unit, label, raw):
    job = handler_job("noop")
    before = table_state()
    body = body_with({"job": job.pk, **schedule_fields(field, unit)}, field, raw)

    response = send(api("operator"), "POST", reverse("api:schedule-list"), body)

    if assert_outcome(response, before, field):
        assert_computable_schedule(BatchSchedule.objects.get(pk=response.json()["id"]))


@pytest.mark.parametrize(("label", "raw"), EXTREMES)
def test_schedule_create_after_a_delay(api, label, raw):
    job = handler_job("noop")
    before = table_state()
    body = body_with({"job": job.pk}, "delay_seconds", raw)

    response = send(api("operator"), "POST", reverse("api:schedule-list"), body)

    if assert_outcome(response, before, "delay_seconds"):
        assert_computable_schedule(BatchSchedule.objects.get(pk=response.json()["id"]))


@pytest.mark.parametrize(("label", "raw"), EXTREMES)
@pytest.mark.parametrize(("field", "unit"), SCHEDULE_CASES)
def test_schedule_update(api, field, unit, label, raw):
    job = handler_job("noop")
    fields = schedule_fields(field, unit)
    if field == "interval_every":
        fields["interval_every"] = 1
    if "run_at" in fields:
        fields["run_at"] = SOON
    schedule = schedule_create(job=job, **fields)
    stored = BatchSchedule.objects.filter(pk=schedule.pk).values().get()
    before = table_state()

    response = send(
        api("operator"),
        "PATCH",
        reverse("api:schedule-detail", args=[schedule.pk]),
        body_with({}, field, raw),
    )

    if assert_outcome(response, before, field):
        assert_computable_schedule(schedule)
    else:
        assert BatchSchedule.objects.filter(pk=schedule.pk).values().get() == stored


@pytest.mark.parametrize(("label", "raw"), EXTREMES)
def test_start_with_a_numeric_parameter(api, label, raw):
    job = handler_job("sleep", params={"seconds": 0})
    before = table_state()
    body = body_with({}, "params", '{"seconds": ' + raw + "}")

    response = send(api("operator"), "POST", reverse("api:job-start", args=[job.pk]), body)

    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert set(response.json()["errors"]) & {"params", "params.seconds", "body"}
        assert table_state() == before


@pytest.mark.parametrize(("label", "raw"), EXTREMES)
def test_seed_create_with_a_repeat(api, label, raw):
    before = table_state()
    fields = {
        "name": "seed-fuzz",
        "endpointUrl": "http://127.0.0.1:8000/demo/ping",
        "scheduleTime": SOON.isoformat(),
    }

    response = send(
        api("operator"), "POST", "/api/v1/batch-job", body_with(fields, "repeatIntervalHour", raw)
    )

    if assert_outcome(response, before, "repeatIntervalHour"):
        assert_computable_schedule(BatchSchedule.objects.get(pk=response.json()["scheduleId"]))


@pytest.mark.parametrize(("label", "raw"), EXTREMES)
def test_preview_count(api, label, raw):
    schedule = schedule_create(job=handler_job("noop"), kind="cron", cron_expression="0 * * * *")

    response = api("reader").get(
        reverse("api:schedule-preview", args=[schedule.pk]), {"count": json.loads(raw)}
    )

    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert "count" in response.json()["errors"]


# --- the control: accepted extremes do not stop firing ---------------------------------------

# The largest (and smallest) value of each field that the API accepts, all at once.
ACCEPTED_EXTREMES = [
    {"kind": "interval", "interval_every": 2**31 - 1, "interval_unit": "seconds"},
    {"kind": "interval", "interval_every": 52_560_000, "interval_unit": "minutes"},
    {"kind": "interval", "interval_every": 876_000, "interval_unit": "hours"},
    {"kind": "interval", "interval_every": 36_500, "interval_unit": "days"},
    {"kind": "interval", "interval_every": 1, "interval_unit": "seconds", "jitter_seconds": 86400,
     "max_runs": 2**31 - 1},
    {"kind": "cron", "cron_expression": "0 0 29 2 *", "misfire_policy": "catch_up",
     "catch_up_window_seconds": 365 * 86400, "catch_up_max": 10_000,
     "misfire_grace_seconds": 365 * 86400},
    {"kind": "once", "run_at": "9999-12-31T23:59:59Z", "jitter_seconds": 86400},
    {"kind": "cron", "cron_expression": "59 23 31 12 *", "timezone": "Pacific/Kiritimati",
     "start_at": "9999-12-31T00:00:00Z"},
]  # fmt: skip


def test_firing_goes_on_after_the_accepted_extremes(api):
    client = api("operator")
    job = handler_job("noop")
    extremes = []
    for fields in ACCEPTED_EXTREMES:
        response = client.post(reverse("api:schedule-list"), {"job": job.pk, **fields}, "json")
        assert response.status_code == 201, (fields, response.content)
        extremes.append(response.json()["id"])
    control = client.post(
        reverse("api:schedule-list"), {"job": job.pk, "delay_seconds": 0}, format="json"
    ).json()["id"]
    # Every one of them due now, as after beat was down: firing computes with each value.
    now = datetime.now(UTC) + timedelta(seconds=1)
    BatchSchedule.objects.filter(pk__in=extremes).update(next_fire_at=now - timedelta(hours=1))

    while schedules_fire_due(now=now).schedules:
        pass

    assert BatchLog.objects.filter(schedule_id=control, trigger=Trigger.SCHEDULE).count() == 1
    for schedule in BatchSchedule.objects.filter(pk__in=extremes):
        assert schedule.set_aside_at is None, schedule.set_aside_reason
        assert_computable_schedule(schedule)
