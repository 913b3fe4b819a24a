"""POST /api/v1/batch-job: the method the job calls with, and the zone of a scheduleTime."""

from datetime import UTC, date, datetime, timedelta

import pytest

from batchjobs.models import BatchJob, BatchSchedule

pytestmark = pytest.mark.django_db

CREATE = "/api/v1/batch-job"
ENDPOINT = "http://127.0.0.1:8000/demo/ping"
NEXT_YEAR = date.today().year + 1  # once-schedules in the past are refused


def body(**fields) -> dict:
    return {"name": "report", "endpointUrl": ENDPOINT, **fields}


def sunday(year: int, month: int, nth: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(6 - first.weekday()) % 7 + 7 * (nth - 1))


@pytest.mark.parametrize(("given", "method"), [({}, "POST"), ({"httpMethod": "PUT"}, "PUT")])
def test_the_job_calls_with_post_unless_the_body_chooses(api, given, method):
    response = api("operator").post(
        CREATE, body(scheduleTime=f"{NEXT_YEAR}-01-02T03:04:05Z", **given), format="json"
    )

    assert response.status_code == 201, response.json()
    assert BatchJob.objects.get(name="report").http_method == method
    assert response.json()["httpMethod"] == method


@pytest.mark.parametrize("method", ["post", "TRACE", 1, None])
def test_a_bad_method_is_refused_naming_the_field(api, method):
    response = api("operator").post(
        CREATE, body(scheduleTime=f"{NEXT_YEAR}-01-02T03:04:05Z", httpMethod=method), format="json"
    )

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["httpMethod"]
    assert not BatchJob.objects.exists()


@pytest.mark.parametrize("given", ["23:50:00", "23:50:00+09:00", "14:50:00Z"])
def test_at_asia_seoul_a_time_without_offset_is_seoul_time(api, settings, given):
    # given
    settings.BATCHJOBS_TIME_ZONE = "Asia/Seoul"

    # when
    response = api("operator").post(
        CREATE, body(scheduleTime=f"{NEXT_YEAR}-12-03T{given}"), format="json"
    )

    # then: 23:50 in Seoul is 14:50 UTC, whether the offset is given or not
    assert response.status_code == 201, response.json()
    schedule = BatchSchedule.objects.get(job__name="report")
    assert schedule.run_at == datetime(NEXT_YEAR, 12, 3, 14, 50, tzinfo=UTC)
    assert schedule.next_fire_at == schedule.run_at


def test_the_zone_applies_to_a_repeating_job_too(api, settings):
    settings.BATCHJOBS_TIME_ZONE = "Asia/Seoul"

    response = api("operator").post(
        CREATE,
        body(scheduleTime=f"{NEXT_YEAR}-12-03T09:00:00", repeatIntervalHour=24),
        format="json",
    )

    assert response.status_code == 201, response.json()
    schedule = BatchSchedule.objects.get(job__name="report")
    assert schedule.start_at == datetime(NEXT_YEAR, 12, 3, 0, 0, tzinfo=UTC)


def test_across_dst_each_side_has_its_own_offset(api, settings):
    settings.BATCHJOBS_TIME_ZONE = "America/New_York"
    client = api("operator")

    winter = client.post(
        CREATE, body(name="winter", scheduleTime=f"{NEXT_YEAR}-01-15T09:00:00"), format="json"
    )
    summer = client.post(
        CREATE, body(name="summer", scheduleTime=f"{NEXT_YEAR}-07-15T09:00:00"), format="json"
    )

    assert (winter.status_code, summer.status_code) == (201, 201)
    runs = dict(BatchSchedule.objects.values_list("job__name", "run_at"))
    assert runs["winter"] == datetime(NEXT_YEAR, 1, 15, 14, 0, tzinfo=UTC)  # EST, -05:00
    assert runs["summer"] == datetime(NEXT_YEAR, 7, 15, 13, 0, tzinfo=UTC)  # EDT, -04:00


def test_a_time_the_clocks_skip_is_refused_naming_schedule_time(api, settings):
    settings.BATCHJOBS_TIME_ZONE = "America/New_York"
    spring_forward = sunday(NEXT_YEAR, 3, 2)  # 02:00 EST becomes 03:00 EDT

    response = api("operator").post(
        CREATE, body(scheduleTime=f"{spring_forward}T02:30:00"), format="json"
    )

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == ["scheduleTime"]
    assert "does not exist in America/New_York" in errors["scheduleTime"][0]
    assert not BatchJob.objects.exists()


def test_a_time_the_clocks_show_twice_is_the_first(api, settings):
    settings.BATCHJOBS_TIME_ZONE = "America/New_York"
    fall_back = sunday(NEXT_YEAR, 11, 1)  # 02:00 EDT becomes 01:00 EST

    response = api("operator").post(
        CREATE, body(scheduleTime=f"{fall_back}T01:30:00"), format="json"
    )

    assert response.status_code == 201, response.json()
    first = datetime.combine(fall_back, datetime.min.time(), tzinfo=UTC) + timedelta(hours=5.5)
    assert BatchSchedule.objects.get().run_at == first  # 01:30 EDT (-04:00), not EST
