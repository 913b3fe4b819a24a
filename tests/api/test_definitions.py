"""Jobs as code over the API (v1/definitions): the same service as `manage.py batchjobs
export/import`, so the document round-trips, a bad field is a 400 naming it and nothing
changes, and secrets stay masked."""

import pytest

from batchjobs.models import BatchJob, BatchSchedule
from batchjobs.rules.masking import SECRET_MASK
from batchjobs.secrets import secret_decrypt
from batchjobs.services.jobs import job_create
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
        "schedules_deleted": 0, "dry_run": False,
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
