"""GET /api/v1/executions/{id}/attempts/{number}/log: an attempt's lines after a number, for
following a running attempt."""

import pytest
from django.urls import reverse

from batchjobs.models import BatchAttempt
from tests.execution.test_attempt_log import chatty  # noqa: F401 - registers the handler
from tests.support.factories import handler_job, start
from tests.support.runs import run_in_process

pytestmark = pytest.mark.django_db


def log_url(execution_id: int, number: int) -> str:
    return reverse("api:execution-attempt-log", args=[execution_id, number])


def test_lines_are_read_after_a_number_until_none_is_left(api, settings):
    # given
    settings.BATCHJOBS_ATTEMPT_LOG_MAX_LINES = 6
    execution = run_in_process(start(handler_job("tests.attempt_log.chatty"), lines=8))
    client = api("reader")
    # when
    first = client.get(log_url(execution.pk, 1), {"limit": 4}).json()
    rest = client.get(log_url(execution.pk, 1), {"after": first["next_after"]}).json()
    none = client.get(log_url(execution.pk, 1), {"after": rest["next_after"]}).json()
    # then
    assert [line["number"] for line in first["lines"]] == [1, 2, 3, 4]
    assert first["lines"][0]["message"] == "line 1 of 8"
    assert first["lines"][0]["level"] == 20
    assert first["lines"][0]["logger"] == "batchjobs.handler.tests.attempt_log.chatty"
    assert first["next_after"] == 4
    assert first["dropped"] == 2
    assert first["running"] is False
    assert [line["number"] for line in rest["lines"]] == [5, 6]
    assert none == {"lines": [], "next_after": 6, "dropped": 2, "running": False}


def test_a_running_attempt_says_so(api):
    execution = start(handler_job("tests.attempt_log.chatty"))
    BatchAttempt.objects.create(execution=execution, number=1, started_at=execution.created_at)
    body = api("reader").get(log_url(execution.pk, 1)).json()
    assert body == {"lines": [], "next_after": 0, "dropped": 0, "running": True}


@pytest.mark.parametrize(
    "query", [{"after": -1}, {"after": "x"}, {"limit": 0}, {"limit": 1001}, {"after": 2**40}]
)
def test_bad_query_is_a_400_naming_the_field(api, query):
    execution = run_in_process(start(handler_job("tests.attempt_log.chatty")))
    response = api("reader").get(log_url(execution.pk, 1), query)
    assert response.status_code == 400
    assert set(response.json()["errors"]) == set(query)


@pytest.mark.parametrize("number", [2, 0, 99999, 10**20])
def test_an_attempt_that_does_not_exist_is_a_404(api, number):
    execution = run_in_process(start(handler_job("tests.attempt_log.chatty")))
    assert api("reader").get(log_url(execution.pk, number)).status_code == 404
    assert api("reader").get(log_url(10**20, 1)).status_code == 404


def test_reading_needs_the_view_permission(api):
    execution = run_in_process(start(handler_job("tests.attempt_log.chatty")))
    assert api("anonymous").get(log_url(execution.pk, 1)).status_code in (401, 403)
