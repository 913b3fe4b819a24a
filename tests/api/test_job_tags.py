"""Tags over the API: read and written by name on a job (created on demand, checked, a bad one
a 400 naming `tags`), and the jobs list filtered by ?tag=."""

import pytest
from django.urls import reverse

from batchjobs.models import AuditEntry, BatchJob, JobTag
from batchjobs.services.jobs import job_tags_set
from tests.support.factories import http_job

pytestmark = pytest.mark.django_db

JOBS = reverse("api:job-list")
URL = "https://example.com/ping"


def test_a_job_is_created_and_changed_with_tags_by_name(api):
    created = api("admin").post(
        JOBS, {"name": "nightly", "kind": "http", "http_url": URL, "tags": ["team-a", "reports"]},
        format="json",
    )  # fmt: skip
    assert created.status_code == 201, created.json()
    assert created.json()["tags"] == ["reports", "team-a"]
    job = BatchJob.objects.get(name="nightly")

    detail = reverse("api:job-detail", args=[job.pk])
    kept = api("admin").patch(detail, {"description": "x"}, format="json")
    assert kept.json()["tags"] == ["reports", "team-a"]  # left out: unchanged
    changed = api("admin").patch(detail, {"tags": ["reports"]}, format="json")
    assert changed.status_code == 200
    assert changed.json()["tags"] == ["reports"]
    assert AuditEntry.objects.filter(job=job, changes__has_key="tags").count() == 2


@pytest.mark.parametrize("tags", [["has space"], "team-a", [1], ["x" * 65], [""]])
def test_bad_tags_are_a_400_naming_tags_and_save_nothing(api, tags):
    refused = api("admin").post(
        JOBS, {"name": "never", "kind": "http", "http_url": URL, "tags": tags}, format="json"
    )
    assert refused.status_code == 400
    assert "tags" in refused.json()["errors"], refused.json()
    assert not BatchJob.objects.filter(name="never").exists()
    assert not JobTag.objects.exists()


def test_the_list_filters_by_tag_in_a_bounded_number_of_queries(api, django_assert_max_num_queries):
    client = api("admin")
    for n in range(3):
        job_tags_set(job=http_job(URL, name=f"a-{n}"), names=["team-a", "x"])
    job_tags_set(job=http_job(URL, name="b"), names=["team-b"])

    listed = client.get(JOBS, {"tag": "team-a"}).json()
    assert [job["name"] for job in listed["results"]] == ["a-0", "a-1", "a-2"]
    assert listed["results"][0]["tags"] == ["team-a", "x"]
    assert client.get(JOBS, {"tag": "nothing"}).json()["results"] == []
    with django_assert_max_num_queries(12):
        client.get(JOBS)
