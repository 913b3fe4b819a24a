"""Job dependencies over the API: edges by job id or name, cycles and bad references a 400
naming the field, the graph, and an execution's triggered_by / triggered."""

import pytest

from batchjobs.models import JobDependency
from batchjobs.services.dependencies import dependency_create
from tests.support.factories import handler_job, start
from tests.support.runs import run_in_process

pytestmark = pytest.mark.django_db

URL = "/api/v1/dependencies"


@pytest.fixture
def chain():
    """nightly-extract → transform → load."""
    extract, transform, load = (
        handler_job("noop", name=name) for name in ("nightly-extract", "transform", "load")
    )
    dependency_create(upstream=extract, downstream=transform)
    dependency_create(upstream=transform, downstream=load, condition="always")
    return extract, transform, load


def test_an_edge_is_added_by_names_and_ids_listed_and_removed(api):
    a, b = handler_job("noop", name="a"), handler_job("noop", name="b")

    created = api().post(URL, {"upstream": "a", "downstream": b.pk, "condition": "failure"},
                         format="json")  # fmt: skip

    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["upstream"], body["upstream_name"], body["downstream_name"]) == (a.pk, "a", "b")
    assert body["condition"] == "failure"
    listed = api().get(URL, {"job": b.pk}).json()["results"]
    assert [edge["id"] for edge in listed] == [body["id"]]
    assert api().delete(f"{URL}/{body['id']}").status_code == 204
    assert not JobDependency.objects.exists()


def test_a_cycle_is_a_400_naming_it(api, chain):
    response = api().post(URL, {"upstream": "load", "downstream": "nightly-extract"},
                          format="json")  # fmt: skip

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "upstream": [
            "This dependency would make a cycle: load → nightly-extract → transform → load."
        ]
    }
    assert JobDependency.objects.count() == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"upstream": "nowhere", "downstream": "a"}, "upstream"),
        ({"upstream": "a", "downstream": 10**9}, "downstream"),
        ({"upstream": "a", "downstream": "a"}, "downstream"),
        ({"upstream": ["a"], "downstream": "a"}, "upstream"),
        ({"upstream": "a", "downstream": "b", "condition": "sometimes"}, "condition"),
        ({"upstream": "a", "downstream": "b", "when": "now"}, "when"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, body, field):
    handler_job("noop", name="a"), handler_job("noop", name="b")
    response = api().post(URL, body, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
    assert not JobDependency.objects.exists()


def test_a_reader_may_list_but_not_add(api):
    handler_job("noop", name="a"), handler_job("noop", name="b")
    assert api("reader").get(URL).status_code == 200
    refused = api("reader").post(URL, {"upstream": "a", "downstream": "b"}, format="json")
    assert refused.status_code == 403


def test_the_graph_of_a_job_shows_both_sides(api, chain):
    extract, transform, load = chain

    graph = api().get(f"/api/v1/jobs/{transform.pk}/graph").json()

    assert graph["job"]["name"] == "transform"
    assert [node["name"] for node in graph["upstream"]] == ["nightly-extract"]
    [downstream] = graph["downstream"]
    assert (downstream["name"], downstream["condition"]) == ("load", "always")
    # one level deep: what lies beyond is marked, not read
    cut = api().get(f"/api/v1/jobs/{extract.pk}/graph", {"depth": 1}).json()
    assert cut["downstream"][0]["truncated"] is True
    assert api().get(f"/api/v1/jobs/{extract.pk}/graph", {"depth": 0}).status_code == 400


def test_an_execution_shows_what_triggered_it_and_what_it_triggered(api, chain):
    extract, transform, _ = chain
    upstream = run_in_process(start(extract))

    detail = api().get(f"/api/v1/executions/{upstream.pk}").json()

    [triggered] = detail["triggered"]
    assert (triggered["job_name"], triggered["condition"]) == ("transform", "success")
    downstream = api().get(f"/api/v1/executions/{triggered['id']}").json()
    assert downstream["triggered_by"] == upstream.pk
    assert downstream["trigger"] == "dependency"
    assert downstream["dependency"] == JobDependency.objects.get(downstream=transform).pk


def test_upstream_mode_is_a_job_field(api):
    job = handler_job("noop", name="c")
    changed = api().patch(f"/api/v1/jobs/{job.pk}", {"upstream_mode": "all"}, format="json")
    assert changed.status_code == 200, changed.json()
    assert changed.json()["upstream_mode"] == "all"
    refused = api().patch(f"/api/v1/jobs/{job.pk}", {"upstream_mode": "most"}, format="json")
    assert list(refused.json()["errors"]) == ["upstream_mode"]
