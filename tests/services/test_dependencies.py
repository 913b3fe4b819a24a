"""The job graph's writes: cycles refused naming them, bad job references naming the field,
nothing half-saved, audited; export and import carry the edges and upstream_mode."""

import pytest

from batchjobs.errors import InvalidInput
from batchjobs.models import AuditAction, AuditEntry, BatchJob, JobDependency, UpstreamMode
from batchjobs.services.definitions import definitions_export, definitions_import
from batchjobs.services.dependencies import (
    dependency_create,
    dependency_delete,
    job_upstream_set,
)
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db


def jobs(*names: str) -> list[BatchJob]:
    return [handler_job("noop", name=name) for name in names]


def refused(call) -> dict[str, list[str]]:
    with pytest.raises(InvalidInput) as caught:
        call()
    return caught.value.field_errors


def test_an_edge_closing_a_two_job_cycle_is_refused_naming_it():
    a, b = jobs("a", "b")
    dependency_create(upstream=a, downstream=b)

    errors = refused(lambda: dependency_create(upstream=b, downstream=a))

    assert errors == {"upstream": ["This dependency would make a cycle: b → a → b."]}
    assert JobDependency.objects.count() == 1  # nothing half-saved


def test_a_longer_cycle_is_named_in_full():
    extract, transform, load = jobs("nightly-extract", "transform", "load")
    dependency_create(upstream=extract, downstream=transform)
    dependency_create(upstream=transform, downstream=load)

    errors = refused(lambda: dependency_create(upstream="load", downstream="nightly-extract"))

    assert errors["upstream"] == [
        "This dependency would make a cycle: load → nightly-extract → transform → load."
    ]


def test_a_diamond_is_no_cycle():
    a, b, c, d = jobs("a", "b", "c", "d")
    for upstream, downstream in ((a, b), (a, c), (b, d), (c, d)):
        dependency_create(upstream=upstream, downstream=downstream)
    assert JobDependency.objects.count() == 4


@pytest.mark.parametrize(
    ("upstream", "downstream", "field"),
    [
        ("missing", "a", "upstream"),
        ("a", 10**9, "downstream"),
        ("a", "a", "downstream"),
        (True, "a", "upstream"),
    ],
)
def test_a_bad_job_reference_is_refused_naming_the_field(upstream, downstream, field):
    jobs("a")
    errors = refused(lambda: dependency_create(upstream=upstream, downstream=downstream))
    assert list(errors) == [field]
    assert not JobDependency.objects.exists()


def test_an_unknown_condition_and_a_second_edge_are_refused():
    a, b = jobs("a", "b")
    assert list(refused(lambda: dependency_create(upstream=a, downstream=b, condition="often")))
    dependency_create(upstream=a, downstream=b)
    assert "downstream" in refused(lambda: dependency_create(upstream=a, downstream=b))


def test_changes_are_audited_and_touch_the_upstream_job():
    a, b = jobs("a", "b")
    before = a.updated_at
    edge = dependency_create(upstream=a, downstream=b, condition="always")
    a.refresh_from_db()
    assert a.updated_at > before  # workers' cached jobs learn they now start downstream jobs

    edge_id = edge.pk
    dependency_delete(dependency=edge)

    entries = AuditEntry.objects.filter(
        content_type__model="jobdependency", object_id=edge_id
    ).order_by("pk")
    assert [entry.action for entry in entries] == [AuditAction.CREATED, AuditAction.DELETED]
    assert entries[0].changes["downstream"] == [None, "b"]
    assert {entry.job_id for entry in entries} == {b.pk}  # in the downstream job's trail


def test_a_job_s_upstream_set_is_replaced_as_a_whole():
    a, b, c, d = jobs("a", "b", "c", "d")
    dependency_create(upstream=a, downstream=d)
    dependency_create(upstream=b, downstream=d, condition="always")

    job_upstream_set(job=d, upstream=[{"job": "b", "condition": "failure"}, {"job": c.pk}])

    assert sorted(d.upstream_edges.values_list("upstream__name", "condition")) == [
        ("b", "failure"), ("c", "success"),
    ]  # fmt: skip


def test_an_upstream_set_closing_a_cycle_changes_nothing():
    a, b = jobs("a", "b")
    dependency_create(upstream=a, downstream=b)

    errors = refused(lambda: job_upstream_set(job=a, upstream=[{"job": "b"}]))

    assert errors == {"upstream[0].job": ["This dependency would make a cycle: b → a → b."]}
    assert list(JobDependency.objects.values_list("upstream__name", "downstream__name")) == [
        ("a", "b")
    ]


# --- export and import -----------------------------------------------------------------------


def test_export_and_import_carry_the_edges_and_the_upstream_mode():
    a, b, c = jobs("a", "b", "c")
    BatchJob.objects.filter(pk=c.pk).update(upstream_mode=UpstreamMode.ALL)
    dependency_create(upstream=a, downstream=c)
    dependency_create(upstream=b, downstream=c, condition="always")
    document = definitions_export()
    [entry] = [job for job in document["jobs"] if job["name"] == "c"]
    assert entry["upstream_mode"] == "all"
    assert entry["upstream"] == [
        {"job": "a", "condition": "success"}, {"job": "b", "condition": "always"},
    ]  # fmt: skip

    JobDependency.objects.all().delete()
    definitions_import(document=document)

    assert definitions_export() == document


def test_an_import_closing_a_cycle_is_refused_naming_it_with_nothing_saved():
    document = {
        "jobs": [
            {"name": name, "kind": "handler", "handler_name": "noop", "upstream": [{"job": up}]}
            for name, up in (("extract", "load"), ("transform", "extract"), ("load", "transform"))
        ]
    }

    errors = refused(lambda: definitions_import(document=document))

    [(field, [message])] = errors.items()
    assert field.endswith(".upstream[0].job")
    assert "would make a cycle" in message
    for name in ("extract", "transform", "load"):
        assert name in message
    assert not BatchJob.objects.exists()
    assert not JobDependency.objects.exists()


def test_an_import_naming_an_unknown_upstream_job_is_refused_naming_it():
    document = {
        "jobs": [
            {
                "name": "x",
                "kind": "handler",
                "handler_name": "noop",
                "upstream": [{"job": "nowhere"}],
            }
        ]  # fmt: skip
    }
    errors = refused(lambda: definitions_import(document=document))
    assert list(errors) == ["x.upstream[0].job"]
    assert not BatchJob.objects.exists()
