"""Job dependencies in the admin: the graph on a job's page, the upstream jobs edited inline or
in their own list (a cycle refused on the field, naming it, nothing saved), and on an
execution's page what triggered it and what it triggered."""

import pytest
from django.urls import reverse

from batchjobs.models import JobDependency
from batchjobs.services.dependencies import dependency_create
from tests.support.admin_forms import NO_SCHEDULES, form_errors
from tests.support.factories import handler_job, start
from tests.support.runs import run_in_process

pytestmark = pytest.mark.django_db

EDITOR = ("view_batchjob", "change_batchjob", "view_jobdependency", "add_jobdependency",
          "change_jobdependency", "delete_jobdependency", "view_batchlog")  # fmt: skip


@pytest.fixture
def chain():
    """nightly-extract → transform → load."""
    extract, transform, load = (
        handler_job("noop", name=name) for name in ("nightly-extract", "transform", "load")
    )
    dependency_create(upstream=extract, downstream=transform)
    dependency_create(upstream=transform, downstream=load, condition="always")
    return extract, transform, load


def test_the_job_page_draws_its_upstream_and_downstream_jobs(staff_client, chain):
    extract, transform, load = chain

    page = staff_client(*EDITOR).get(
        reverse("admin:batchjobs_batchjob_change", args=[transform.pk])
    )

    html = page.content.decode()
    graph = html[html.index('class="bj-dependency-graph"') :]
    job_url = "admin:batchjobs_batchjob_change"
    assert f'← <a href="{reverse(job_url, args=[extract.pk])}">nightly-extract</a>' in graph
    assert f'→ <a href="{reverse(job_url, args=[load.pk])}">load</a>' in graph
    assert "always" in graph
    assert "cdn" not in html.lower()


def test_a_cycle_added_in_the_dependency_list_is_refused_on_the_field(staff_client, chain):
    extract, _, load = chain
    client = staff_client(*EDITOR)

    response = client.post(
        reverse("admin:batchjobs_jobdependency_add"),
        {"upstream": load.pk, "downstream": extract.pk, "condition": "success"},
    )

    assert response.status_code == 200
    assert form_errors(response)["upstream"] == [
        "This dependency would make a cycle: load → nightly-extract → transform → load."
    ]
    assert JobDependency.objects.count() == 2


def test_a_cycle_added_inline_on_the_job_page_is_refused(staff_client, chain):
    extract, _, load = chain
    client = staff_client(*EDITOR)
    url = reverse("admin:batchjobs_batchjob_change", args=[extract.pk])
    form = client.get(url).context["adminform"].form
    data = {
        name: value
        for name, value in form.initial.items()
        if value is not None and not isinstance(value, bool)
    }
    data |= {
        "params": "{}", "http_headers": "[]", "enabled": "on", **NO_SCHEDULES,
        "upstream_edges-TOTAL_FORMS": "1", "upstream_edges-0-upstream": str(load.pk),
        "upstream_edges-0-condition": "success",
    }  # fmt: skip

    response = client.post(url, data)

    assert response.status_code == 200
    [formset] = [
        inline.formset
        for inline in response.context["inline_admin_formsets"]
        if inline.formset.prefix == "upstream_edges"
    ]
    assert formset.forms[0].errors["upstream"] == [
        "This dependency would make a cycle: load → nightly-extract → transform → load."
    ]
    assert not JobDependency.objects.filter(downstream=extract).exists()


def test_an_upstream_job_is_added_inline(staff_client):
    a, b = handler_job("noop", name="a"), handler_job("noop", name="b")
    client = staff_client(*EDITOR)
    url = reverse("admin:batchjobs_batchjob_change", args=[b.pk])
    form = client.get(url).context["adminform"].form
    data = {
        name: value
        for name, value in form.initial.items()
        if value is not None and not isinstance(value, bool)
    }
    data |= {
        "params": "{}", "http_headers": "[]", "enabled": "on", **NO_SCHEDULES,
        "upstream_edges-TOTAL_FORMS": "1", "upstream_edges-0-upstream": str(a.pk),
        "upstream_edges-0-condition": "failure",
    }  # fmt: skip

    response = client.post(url, data)

    assert response.status_code == 302, response.context and form_errors(response)
    edges = JobDependency.objects.values_list("upstream__name", "downstream__name", "condition")
    assert list(edges) == [("a", "b", "failure")]


def test_an_execution_page_links_what_triggered_it_and_what_it_triggered(staff_client, chain):
    extract, transform, _ = chain
    upstream = run_in_process(start(extract))
    [downstream] = upstream.triggered.all()
    client = staff_client(*EDITOR)

    upstream_page = client.get(reverse("admin:batchjobs_batchlog_change", args=[upstream.pk]))
    downstream_page = client.get(reverse("admin:batchjobs_batchlog_change", args=[downstream.pk]))

    link_down = reverse("admin:batchjobs_batchlog_change", args=[downstream.pk])
    link_up = reverse("admin:batchjobs_batchlog_change", args=[upstream.pk])
    assert (
        f'→ <a href="{link_down}">#{downstream.pk} transform</a>' in upstream_page.content.decode()
    )
    assert f'<a href="{link_up}">#{upstream.pk} nightly-extract</a>' in (
        downstream_page.content.decode()
    )
