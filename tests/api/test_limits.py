"""Run limits over the API (v1/limits): created, listed with what they hold and run, changed and
deleted through the limit service, audited; every bad value a 400 naming the field that saves
nothing and audits nothing; a change wakes the executions the limit holds once it commits."""

import json

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from batchjobs.models import (
    AuditAction,
    AuditEntry,
    BatchLog,
    ExecutionStatus,
    RunLimit,
    Trigger,
)
from batchjobs.services.limits import limit_create
from tests.support.factories import handler_job, http_job
from tests.support.processes import queue_purge

pytestmark = pytest.mark.django_db

LIMITS = reverse("api:limit-list")
# No worker consumes it: executions a test wakes wait there until it is purged.
QUEUE = "limits-test"


def detail(limit: RunLimit) -> str:
    return reverse("api:limit-detail", args=[limit.pk])


def stored_state() -> tuple[list[dict], int]:
    return list(RunLimit.objects.order_by("pk").values()), AuditEntry.objects.count()


def held(job, count: int, key: str) -> list[BatchLog]:
    return [
        BatchLog.objects.create(
            job=job, trigger=Trigger.API, status=ExecutionStatus.QUEUED, held_by=key
        )
        for _ in range(count)
    ]


@pytest.fixture
def purged_queue():
    yield QUEUE
    queue_purge(QUEUE)


# --- create, list, read, change, delete --------------------------------------------------------


def test_create_list_read_change_and_delete_are_audited(api):
    client = api("admin")

    # when
    created = client.post(
        LIMITS,
        {"scope": "host", "name": " API.Example.COM ", "max_running": 50, "max_per_second": 200},
        format="json",
    )
    limit = RunLimit.objects.get()
    listed = client.get(LIMITS)
    read = client.get(detail(limit))
    patched = client.patch(detail(limit), {"max_running": 60}, format="json")
    put = client.put(
        detail(limit),
        {"scope": "host", "name": "api.example.com", "max_running": None, "max_per_second": 100},
        format="json",
    )
    deleted = client.delete(detail(limit))

    # then
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body == {
        "id": limit.pk, "scope": "host", "name": "api.example.com", "max_running": 50,
        "max_per_second": 200, "waiting": 0, "running": 0, "updated_at": body["updated_at"],
    }  # fmt: skip
    assert listed.json()["results"] == [read.json()]
    assert patched.status_code == 200 and patched.json()["max_running"] == 60
    assert put.status_code == 200, put.json()
    assert (put.json()["max_running"], put.json()["max_per_second"]) == (None, 100)
    assert deleted.status_code == 204
    assert not RunLimit.objects.exists()
    trail = list(AuditEntry.objects.order_by("id").values_list("action", "changes", "actor_name"))
    assert trail == [
        (AuditAction.CREATED, {"scope": [None, "host"], "name": [None, "api.example.com"],
                               "max_running": [None, 50], "max_per_second": [None, 200]},
         "admin-user"),
        (AuditAction.CHANGED, {"max_running": [50, 60]}, "admin-user"),
        (AuditAction.CHANGED, {"max_running": [60, None], "max_per_second": [200, 100]},
         "admin-user"),
        (AuditAction.DELETED, {}, "admin-user"),
    ]  # fmt: skip


def test_a_host_is_saved_as_job_urls_name_it(api):
    client = api("admin")

    names = [
        client.post(LIMITS, {"scope": "host", "name": name, "max_running": 1}, format="json")
        .json()
        .get("name")
        for name in ("Bücher.DE", "[::1]", "0:0:0:0:0:0:0:2", "10.0.0.5")
    ]
    job = http_job("https://BÜCHER.de/report", name="report")

    assert names == ["xn--bcher-kva.de", "::1", "::2", "10.0.0.5"]
    assert job.target_host == "xn--bcher-kva.de"


def test_a_queue_name_keeps_its_case_and_loses_surrounding_spaces(api):
    response = api("admin").post(
        LIMITS, {"scope": "queue", "name": "  Reports ", "max_running": 3}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["name"] == "Reports"


def test_the_list_counts_what_each_limit_holds_and_runs(api):
    # given
    reports = handler_job("noop", name="report", queue="reports")
    pinger = http_job("http://Example.com/ping", name="ping")
    queue_limit = limit_create(scope="queue", name="reports", max_running=1)
    host_limit = limit_create(scope="host", name="example.com", max_per_second=5)
    limit_create(scope="queue", name="idle", max_running=1)
    held(reports, 2, "queue:reports")
    held(pinger, 1, "host:example.com")
    for job, status in [
        (reports, ExecutionStatus.STARTED), (pinger, ExecutionStatus.STARTED),
        (pinger, ExecutionStatus.STOPPING), (pinger, ExecutionStatus.COMPLETED),
        (reports, ExecutionStatus.QUEUED),  # queued but not held: counted nowhere
    ]:  # fmt: skip
        BatchLog.objects.create(job=job, trigger=Trigger.API, status=status)

    # when
    rows = api("admin").get(LIMITS).json()["results"]
    only_queues = api("admin").get(LIMITS, {"scope": "queue"}).json()["results"]

    # then
    counts = {(row["scope"], row["name"]): (row["waiting"], row["running"]) for row in rows}
    assert counts == {
        ("host", "example.com"): (1, 2),
        ("queue", "idle"): (0, 0),
        ("queue", "reports"): (2, 1),
    }
    assert [row["name"] for row in only_queues] == ["idle", "reports"]
    assert api("admin").get(detail(queue_limit)).json()["waiting"] == 2
    assert api("admin").get(detail(host_limit)).json()["running"] == 2


# --- bad input ---------------------------------------------------------------------------------

VALID = {"scope": "host", "name": "api.example.com", "max_running": 5, "max_per_second": 10}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"max_running": 0}, "max_running"),
        ({"max_running": -1}, "max_running"),
        ({"max_running": 100_001}, "max_running"),
        ({"max_running": 2**63}, "max_running"),
        ({"max_running": "NaN"}, "max_running"),
        ({"max_running": "abc"}, "max_running"),
        ({"max_running": "5"}, "max_running"),
        ({"max_running": 2.5}, "max_running"),
        ({"max_running": True}, "max_running"),
        ({"max_per_second": 0}, "max_per_second"),
        ({"max_per_second": -1}, "max_per_second"),
        ({"max_per_second": 100_001}, "max_per_second"),
        ({"max_per_second": "NaN"}, "max_per_second"),
        ({"max_per_second": "abc"}, "max_per_second"),
        ({"scope": "queue", "name": "reports"}, "max_per_second"),  # a rate on a queue
        ({"max_running": None, "max_per_second": None}, "max_running"),  # neither set
        ({"scope": "pool"}, "scope"),
        ({"scope": None}, "scope"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": 5}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"name": "https://api.example.com/"}, "name"),
        ({"name": "api.example.com:8443"}, "name"),
        ({"name": "api.example.com/v1"}, "name"),
        ({"name": "user@api.example.com"}, "name"),
        ({"name": "not a host"}, "name"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_each_bad_value_is_a_400_naming_the_field_and_saves_nothing(api, change, field):
    before = stored_state()

    response = api("admin").post(LIMITS, {**VALID, **change}, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"
    assert field in response.json()["errors"], response.json()
    assert stored_state() == before


def test_neither_number_given_is_a_400_on_max_running(api):
    response = api("admin").post(LIMITS, {"scope": "queue", "name": "q"}, format="json")

    assert response.status_code == 400
    assert "max_running" in response.json()["errors"]
    assert not RunLimit.objects.exists()


def test_a_nan_literal_is_a_400_on_the_body(api):
    body = json.dumps({**VALID, "max_running": float("nan")})  # NaN, which JSON has not

    response = api("admin").generic("POST", LIMITS, body, content_type="application/json")

    assert response.status_code == 400
    assert "body" in response.json()["errors"]
    assert not RunLimit.objects.exists()


@pytest.mark.parametrize("name", ["api.example.com", "API.example.com ", "[api.example.com]"])
def test_a_second_limit_of_the_same_scope_and_name_is_a_400_on_name(api, name):
    limit_create(scope="host", name="api.example.com", max_running=5)
    before = stored_state()

    response = api("admin").post(
        LIMITS, {"scope": "host", "name": name, "max_running": 9}, format="json"
    )
    other_scope = api("admin").post(
        LIMITS, {"scope": "queue", "name": "api.example.com", "max_running": 9}, format="json"
    )

    assert response.status_code == 400
    assert "already exists" in response.json()["errors"]["name"][0]
    assert before[0] == list(RunLimit.objects.filter(scope="host").values())
    assert other_scope.status_code == 201  # a queue may bear the host's name


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"max_running": 0}, "max_running"),
        ({"max_per_second": "NaN"}, "max_per_second"),
        ({"max_running": None, "max_per_second": None}, "max_running"),
        ({"scope": "queue"}, "max_per_second"),
        ({"name": "taken.example.com"}, "name"),
        ({"name": "https://api.example.com"}, "name"),
        ({"id": 99, "waiting": 7}, None),  # read-only fields sent back are ignored: a 200
    ],
)
def test_a_bad_change_is_a_400_and_keeps_the_limit(api, change, field):
    limit = limit_create(scope="host", name="api.example.com", max_running=5, max_per_second=9)
    limit_create(scope="host", name="taken.example.com", max_running=1)
    before = stored_state()

    response = api("admin").patch(detail(limit), change, format="json")

    if field is None:
        assert response.status_code == 200, response.json()
        assert response.json()["id"] == limit.pk
        return
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    assert stored_state() == before


def test_unknown_ids_are_404(api):
    client = api("admin")

    answers = [
        client.get(reverse("api:limit-detail", args=[424242])),
        client.patch(reverse("api:limit-detail", args=[424242]), {}, format="json"),
        client.delete(reverse("api:limit-detail", args=[424242])),
        client.get(f"{LIMITS}/{10**30}"),
    ]

    assert [answer.status_code for answer in answers] == [404, 404, 404, 404]
    assert "424242" in answers[0].json()["detail"]


# --- permissions -------------------------------------------------------------------------------


def client_with(django_user_model, *codenames: str) -> APIClient:
    user = django_user_model.objects.create_user(username="-".join(codenames) or "none")
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="batchjobs", codename__in=codenames)
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_each_operation_needs_its_model_permission(api, django_user_model):
    limit = limit_create(scope="queue", name="reports", max_running=2)
    nothing = client_with(django_user_model)
    viewer = client_with(django_user_model, "view_runlimit")
    editor = client_with(django_user_model, "view_runlimit", "add_runlimit", "change_runlimit")
    new = {"scope": "queue", "name": "other", "max_running": 1}

    assert api("anonymous").get(LIMITS).status_code == 401
    assert nothing.get(LIMITS).status_code == 403
    assert viewer.get(LIMITS).status_code == 200
    assert viewer.post(LIMITS, new, format="json").status_code == 403
    assert viewer.patch(detail(limit), {"max_running": 3}, format="json").status_code == 403
    assert editor.post(LIMITS, new, format="json").status_code == 201
    assert editor.patch(detail(limit), {"max_running": 3}, format="json").status_code == 200
    assert editor.delete(detail(limit)).status_code == 403
    assert api("admin").delete(detail(limit)).status_code == 204


# --- a change wakes what the limit holds ---------------------------------------------------------


def test_a_raised_limit_sends_as_many_as_it_now_has_room_for_oldest_first(
    api, purged_queue, django_capture_on_commit_callbacks
):
    # given: a queue limit of 1, one run running and three held
    job = handler_job("noop", name="held", queue=purged_queue)
    limit = limit_create(scope="queue", name=purged_queue, max_running=1)
    BatchLog.objects.create(job=job, trigger=Trigger.API, status=ExecutionStatus.STARTED)
    waiting = held(job, 3, limit.key)

    # when: raised to 3, room for two more
    with django_capture_on_commit_callbacks(execute=True):
        response = api("admin").patch(detail(limit), {"max_running": 3}, format="json")

    # then
    assert response.status_code == 200
    still_held = BatchLog.objects.filter(held_by=limit.key).values_list("pk", flat=True)
    assert list(still_held) == [waiting[2].pk]
    assert all(execution.status == ExecutionStatus.QUEUED for execution in waiting)


def test_a_refused_change_wakes_nothing(api, purged_queue, django_capture_on_commit_callbacks):
    job = handler_job("noop", name="held", queue=purged_queue)
    limit = limit_create(scope="queue", name=purged_queue, max_running=1)
    held(job, 2, limit.key)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api("admin").patch(detail(limit), {"max_running": 0}, format="json")

    assert response.status_code == 400
    assert callbacks == []
    assert BatchLog.objects.filter(held_by=limit.key).count() == 2


def test_a_deleted_or_renamed_limit_sends_all_it_held(
    api, purged_queue, django_capture_on_commit_callbacks
):
    job = handler_job("noop", name="held", queue=purged_queue)
    renamed = limit_create(scope="queue", name=purged_queue, max_running=1)
    doomed = limit_create(scope="host", name="gone.example.com", max_running=1)
    held(job, 2, renamed.key)
    held(job, 2, doomed.key)

    with django_capture_on_commit_callbacks(execute=True):
        api("admin").patch(detail(renamed), {"name": "elsewhere"}, format="json")
        api("admin").delete(detail(doomed))

    assert not BatchLog.objects.exclude(held_by="").exists()
