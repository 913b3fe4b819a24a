"""Jobs as code over the API (v1/definitions): the same service as `manage.py batchjobs
export/import`, so the document round-trips (jobs, schedules and run limits), a bad field is a
400 naming it and nothing changes, and secrets stay masked."""

import pytest
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from batchjobs.models import AuditEntry, BatchJob, BatchSchedule, RunLimit
from batchjobs.rules.masking import SECRET_MASK
from batchjobs.secrets import secret_decrypt
from batchjobs.services.jobs import job_create
from batchjobs.services.limits import limit_create
from batchjobs.services.schedules import schedule_create
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db

URL = "/api/v1/definitions"


@pytest.fixture
def ping() -> BatchJob:
    job = job_create(
        name="ping", kind="http", http_url="https://example.com/ping",
        http_headers=[{"name": "Authorization", "value": "Bearer s3cret", "secret": True}],
    )  # fmt: skip
    schedule_create(job=job, kind="cron", cron_expression="30 2 * * *", timezone="Europe/Berlin")
    return job


def test_export_then_import_onto_the_same_jobs_changes_nothing_and_keeps_the_secret(api, ping):
    # given
    exported = api().get(URL)
    document = exported.json()

    # when
    imported = api().post(URL, document, format="json")

    # then
    assert exported.status_code == 200
    (job,) = document["jobs"]
    assert job["http_headers"][0]["value"] == SECRET_MASK
    assert [schedule["cron_expression"] for schedule in job["schedules"]] == ["30 2 * * *"]
    assert imported.status_code == 200, imported.json()
    assert imported.json() == {
        "jobs_created": 0, "jobs_updated": 1, "schedules_created": 0, "schedules_updated": 1,
        "schedules_deleted": 0, "limits_created": 0, "limits_updated": 0,
        "calendars_created": 0, "calendars_updated": 0, "dry_run": False,
    }  # fmt: skip
    stored = BatchJob.objects.get(name="ping").http_headers[0]["value"]
    assert secret_decrypt(stored) == "Bearer s3cret"
    assert api().get(URL).json() == document


def test_export_of_named_jobs_and_of_an_unknown_name(api, ping):
    handler_job("noop", name="other")

    named = api().get(URL, {"job": "other"})
    unknown = api().get(URL, {"job": ["other", "nope"]})

    assert [job["name"] for job in named.json()["jobs"]] == ["other"]
    assert unknown.status_code == 404
    assert "'nope'" in unknown.json()["detail"]


def test_import_creates_jobs_and_a_dry_run_changes_nothing(api):
    document = {
        "version": 1,
        "jobs": [
            {"name": "nightly", "kind": "handler", "handler_name": "noop",
             "schedules": [{"kind": "interval", "interval_every": 5}]},
        ],
    }  # fmt: skip

    dry = api().post(f"{URL}?dry_run=true", document, format="json")
    nothing = BatchJob.objects.exists()
    real = api().post(URL, document, format="json")

    assert (dry.status_code, dry.json()["dry_run"], dry.json()["jobs_created"]) == (200, True, 1)
    assert not nothing
    assert real.json()["schedules_created"] == 1
    assert BatchSchedule.objects.get().job.name == "nightly"


def test_a_bad_field_is_a_400_naming_it_and_nothing_changes(api, ping):
    document = api().get(URL).json()
    document["jobs"][0]["description"] = "would change"
    document["jobs"][0]["schedules"][0]["timezone"] = "Moon/Base"

    response = api().post(URL, document, format="json")

    assert response.status_code == 400
    assert "ping.schedules[0].timezone" in response.json()["errors"]
    assert BatchJob.objects.get(name="ping").description == ""


def test_a_masked_secret_cannot_create_a_job(api, ping):
    document = api().get(URL).json()
    BatchJob.objects.all().delete()

    response = api().post(URL, document, format="json")

    assert response.status_code == 400
    assert "ping.http_headers" in response.json()["errors"]
    assert not BatchJob.objects.exists()


def test_a_reader_may_export_but_not_import(api, ping):
    document = api("reader").get(URL)

    refused = api("reader").post(URL, document.json(), format="json")

    assert document.status_code == 200
    assert refused.status_code == 403


# --- run limits ------------------------------------------------------------------------------


@pytest.fixture
def limited(ping) -> BatchJob:
    """The ping job with a limit of its own, its host's and its queue's, and a limit that does
    not concern it."""
    ping.max_running = 3
    ping.save()
    limit_create(scope="host", name="example.com", max_running=50, max_per_second=200)
    limit_create(scope="queue", name=ping.queue, max_running=400)
    limit_create(scope="queue", name="reports", max_running=2)
    return ping


def test_limits_and_a_jobs_own_limit_round_trip_through_export_delete_import(api, limited):
    # given
    document = api().get(URL).json()
    # what the import must bring back; the secret header is re-sent in clear (masked, it
    # cannot create a job)
    document["jobs"][0]["http_headers"][0]["value"] = "Bearer s3cret"
    BatchJob.objects.all().delete()
    RunLimit.objects.all().delete()

    # when
    imported = api().post(URL, document, format="json")

    # then
    assert imported.status_code == 200, imported.json()
    assert (imported.json()["limits_created"], imported.json()["jobs_created"]) == (3, 1)
    again = api().get(URL).json()
    again["jobs"][0]["http_headers"][0]["value"] = "Bearer s3cret"
    assert again == document
    assert document["jobs"][0]["max_running"] == 3
    assert document["limits"] == [
        {"scope": "host", "name": "example.com", "max_running": 50, "max_per_second": 200},
        {"scope": "queue", "name": limited.queue, "max_running": 400, "max_per_second": None},
        {"scope": "queue", "name": "reports", "max_running": 2, "max_per_second": None},
    ]


def test_import_updates_limits_by_scope_and_name_and_leaves_the_others(api, limited):
    document = {
        "version": 1,
        "limits": [
            {"scope": "host", "name": "EXAMPLE.com", "max_running": 10},
            {"scope": "host", "name": "new.example.com", "max_per_second": 5},
        ],
        "jobs": [],
    }

    response = api().post(URL, document, format="json")

    assert response.status_code == 200, response.json()
    assert (response.json()["limits_created"], response.json()["limits_updated"]) == (1, 1)
    stored = {
        (scope, name): (running, per_second)
        for scope, name, running, per_second in RunLimit.objects.values_list(
            "scope", "name", "max_running", "max_per_second"
        )
    }
    assert stored == {
        ("host", "example.com"): (10, 200),  # left out: kept
        ("host", "new.example.com"): (None, 5),
        ("queue", limited.queue): (400, None),
        ("queue", "reports"): (2, None),
    }


def test_an_export_of_named_jobs_holds_the_limits_of_their_queue_and_host(api, limited):
    document = api().get(URL, {"job": "ping"}).json()

    assert [(limit["scope"], limit["name"]) for limit in document["limits"]] == [
        ("host", "example.com"),
        ("queue", limited.queue),
    ]


@pytest.mark.parametrize(
    ("limits", "field"),
    [
        ([{"scope": "host", "name": "example.com", "max_running": 0}], "limits[0].max_running"),
        ([{"scope": "queue", "name": "q", "max_per_second": 5}], "limits[0].max_per_second"),
        ([{"scope": "queue", "name": "q"}], "limits[0].max_running"),
        ([{"scope": "host", "name": "example.com", "max_running": "NaN"}],
         "limits[0].max_running"),
        ([{"scope": "host", "name": "https://example.com/", "max_running": 1}],
         "limits[0].name"),
        ([{"scope": "pool", "name": "q", "max_running": 1}], "limits[0].scope"),
        ([{"scope": "queue", "name": "q", "max_running": 1, "colour": "red"}],
         "limits[0].colour"),
        ([{"scope": "queue", "name": "q", "max_running": 1},
          {"scope": "queue", "name": " q ", "max_running": 2}], "limits[1].name"),
        ([5], "limits[0]"),
        ({"scope": "queue"}, "limits"),
    ],
)  # fmt: skip
def test_a_bad_limit_is_a_400_naming_it_and_nothing_changes(api, limited, limits, field):
    document = api().get(URL).json()
    document["jobs"][0]["description"] = "would change"
    document["limits"] = limits
    before = (list(RunLimit.objects.values()), AuditEntry.objects.count())

    response = api().post(URL, document, format="json")

    assert response.status_code == 400
    assert field in response.json()["errors"], response.json()
    assert BatchJob.objects.get(name="ping").description == ""
    assert (list(RunLimit.objects.values()), AuditEntry.objects.count()) == before


def test_a_bad_jobs_own_limit_is_a_400_naming_it(api, limited):
    document = api().get(URL).json()
    document["jobs"][0]["max_running"] = 0

    response = api().post(URL, document, format="json")

    assert response.status_code == 400
    assert "ping.max_running" in response.json()["errors"]
    assert BatchJob.objects.get(name="ping").max_running == 3


def test_limits_need_their_own_permissions_to_export_and_import(limited, django_user_model):
    # given: a user who may export and import jobs and schedules, but not see or set limits
    user = django_user_model.objects.create_user(username="jobs-only")
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="batchjobs",
            codename__in=[
                "view_batchjob", "add_batchjob", "change_batchjob", "view_batchschedule",
                "add_batchschedule", "change_batchschedule", "delete_batchschedule",
            ],
        )
    )  # fmt: skip
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")

    # when
    exported = client.get(URL).json()
    jobs_only = client.post(URL, exported, format="json")
    with_limits = client.post(
        URL,
        {"version": 1, "jobs": [], "limits": [{"scope": "queue", "name": "x", "max_running": 1}]},
        format="json",
    )

    # then
    assert exported["limits"] == []
    assert jobs_only.status_code == 200, jobs_only.json()
    assert with_limits.status_code == 403
    assert "limits" in with_limits.json()["errors"]
    assert not RunLimit.objects.filter(name="x").exists()


def test_a_dry_run_of_limits_changes_nothing_and_wakes_nothing(
    api, limited, django_capture_on_commit_callbacks
):
    document = {"version": 1, "limits": [{"scope": "queue", "name": "new", "max_running": 1}]}

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api().post(f"{URL}?dry_run=true", document, format="json")

    assert response.json()["limits_created"] == 1
    assert callbacks == []
    assert not RunLimit.objects.filter(name="new").exists()
