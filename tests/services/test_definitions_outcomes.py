"""What an import reports per job (created, updated with the fields that change, unchanged),
secrets compared as stored; and every bad entry of a document at once, nothing saved."""

import pytest

from batchjobs.errors import InvalidInput
from batchjobs.models import BatchJob
from batchjobs.services.definitions import definitions_export, definitions_import
from tests.support.factories import http_job

pytestmark = pytest.mark.django_db

SECRET = [{"name": "Authorization", "value": "Bearer one", "secret": True}]


def outcomes(result) -> dict[str, tuple[str, list[str]]]:
    return {job["name"]: (job["outcome"], job["fields"]) for job in result.jobs}


def test_a_masked_secret_is_unchanged_and_a_new_value_is_a_change():
    http_job("https://example.com/a", name="with-secret", http_headers=SECRET)
    document = definitions_export()  # secrets masked

    assert outcomes(definitions_import(document=document, dry_run=True)) == {
        "with-secret": ("unchanged", [])
    }
    document["jobs"][0]["http_headers"][0]["value"] = "Bearer two"
    assert outcomes(definitions_import(document=document, dry_run=True)) == {
        "with-secret": ("updated", ["http_headers[0].value"])
    }


def test_every_bad_job_is_reported_and_nothing_is_saved():
    document = {
        "jobs": [
            {"name": "a", "kind": "http", "http_url": "ftp://x"},
            {"name": "b", "kind": "http", "http_url": "https://example.com/"},
            {"name": "c", "kind": "http", "http_url": "https://example.com/", "max_attempts": 0},
        ]
    }
    with pytest.raises(InvalidInput) as refused:
        definitions_import(document=document)
    assert sorted(refused.value.field_errors) == ["a.http_url", "c.max_attempts"]
    assert not BatchJob.objects.exists()
