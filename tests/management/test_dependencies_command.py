"""`manage.py dependencies`: list, add, remove and graph, by job name or id; a cycle or an
unknown job exits 2 naming it."""

import json

import pytest
from django.core.management import CommandError, call_command

from batchjobs.models import JobDependency
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("dependencies", *args, stdout=out)
    return out.getvalue()


def test_add_list_graph_and_remove_by_names_and_ids():
    handler_job("noop", name="extract")
    transform = handler_job("noop", name="transform")

    added = json.loads(run("add", "extract", str(transform.pk), "--condition", "always", "--json"))
    assert (added["upstream_name"], added["downstream_name"]) == ("extract", "transform")
    assert (
        run("list", "--job", "transform").strip() == f"extract → transform\talways\t#{added['id']}"
    )
    assert run("graph", "extract").splitlines() == ["extract", "→ transform (always)"]

    run("remove", "extract", "transform")
    assert not JobDependency.objects.exists()


def test_a_cycle_exits_2_naming_it():
    handler_job("noop", name="a"), handler_job("noop", name="b")
    run("add", "a", "b")

    with pytest.raises(CommandError) as caught:
        run("add", "b", "a")

    assert caught.value.returncode == 2
    assert "b → a → b" in str(caught.value)


def test_an_unknown_job_and_a_missing_edge_exit_2():
    handler_job("noop", name="a")
    with pytest.raises(CommandError, match="nowhere") as caught:
        run("add", "a", "nowhere")
    assert caught.value.returncode == 2
    with pytest.raises(CommandError, match="does not start"):
        run("remove", "a", "a")
