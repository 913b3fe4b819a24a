"""Tags of jobs: set, added and removed by name through the job services (tags created on
demand), audited as a change of the job's `tags`, bad names refused naming the field."""

import pytest

from batchjobs.errors import InvalidInput
from batchjobs.models import AuditAction, AuditEntry, JobTag
from batchjobs.services.jobs import (
    MAX_TAGS_PER_JOB,
    job_create,
    job_tags_add,
    job_tags_remove,
    job_tags_set,
    job_update,
)
from tests.support.factories import http_job

pytestmark = pytest.mark.django_db


def tags_of(job) -> list[str]:
    return sorted(job.tags.values_list("name", flat=True))


def tag_changes(job) -> list[list]:
    return [
        entry.changes["tags"]
        for entry in AuditEntry.objects.filter(job=job, action=AuditAction.CHANGED).order_by("id")
        if "tags" in entry.changes
    ]


def test_add_and_remove_are_audited_with_the_user_and_create_tags_on_demand(admin_user):
    job = http_job("https://example.com/a")

    assert job_tags_add(job=job, names=["team-a", "nightly"], user=admin_user) == [
        "nightly", "team-a",
    ]  # fmt: skip
    assert job_tags_add(job=job, names=["nightly"], user=admin_user) == ["nightly", "team-a"]
    assert job_tags_remove(job=job, names=["team-a", "absent"], user=admin_user) == ["nightly"]

    assert tags_of(job) == ["nightly"]
    assert JobTag.objects.filter(name="team-a").exists()  # removing a tag from a job keeps it
    # an add that changes nothing records nothing
    assert tag_changes(job) == [[[], ["nightly", "team-a"]], [["nightly", "team-a"], ["nightly"]]]
    assert set(
        AuditEntry.objects.filter(job=job, changes__has_key="tags").values_list("actor", flat=True)
    ) == {admin_user.pk}


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["has space"], "Use letters"),
        (["x" * 65], "at most 64 characters"),
        ([""], "cannot be blank"),
        ("nightly", "list of tag names"),
        ([3], "list of tag names"),
        ([f"t{n}" for n in range(MAX_TAGS_PER_JOB + 1)], "At most 20 tags"),
    ],
)
def test_bad_names_are_refused_naming_tags_and_nothing_changes(names, message):
    job = http_job("https://example.com/a")
    job_tags_set(job=job, names=["kept"])

    with pytest.raises(InvalidInput) as refused:
        job_tags_set(job=job, names=names)

    assert list(refused.value.field_errors) == ["tags"]
    assert message in " ".join(refused.value.field_errors["tags"])
    assert tags_of(job) == ["kept"]
    assert list(JobTag.objects.values_list("name", flat=True)) == ["kept"]


def test_create_and_update_take_tags_and_a_bad_one_saves_nothing():
    job = job_create(name="tagged", kind="http", http_url="https://example.com/a",
                     tags=["a", " b "])  # fmt: skip
    assert tags_of(job) == ["a", "b"]

    job_update(job=job, description="kept tags")  # tags left out: unchanged
    assert tags_of(job) == ["a", "b"]

    with pytest.raises(InvalidInput) as refused:
        job_update(job=job, description="changed", tags=["bad tag"])
    assert list(refused.value.field_errors) == ["tags"]
    job.refresh_from_db()
    assert (job.description, tags_of(job)) == ("kept tags", ["a", "b"])

    with pytest.raises(InvalidInput):
        job_create(name="never", kind="http", http_url="https://example.com/a", tags=["x y"])
    assert not job.__class__.objects.filter(name="never").exists()
