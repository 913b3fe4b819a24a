"""The API speaks the caller's language: its error messages follow the language cookie, then
Accept-Language, else the deployment's (LANGUAGE_CODE). Field names, codes and statuses are the
protocol and stay the same in every language."""

import re

import pytest
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext

from batchjobs.handlers.registry import handler_names
from batchjobs.models import BatchJob
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db

JOBS = reverse("api:job-list")
HANGUL = re.compile("[\uac00-\ud7a3]")
MISSING = 999_999_999
# A handler job naming no handler: a service's field error, with placeholders.
BAD_JOB = {"name": "nightly", "kind": "handler", "handler_name": "no-such-handler"}


def korean(message: str, **values) -> str:
    """`message` as the Korean catalogue says it (its placeholders filled in)."""
    with translation.override("ko"):
        text = gettext(message) % values if values else gettext(message)
    assert HANGUL.search(text), f"the Korean catalogue has no translation of {message!r}"
    return text


def no_handler(name: str, language: str) -> str:
    """The job service's message for a handler name that names none."""
    with translation.override(language):
        return gettext("No handler named %(name)s; registered: %(names)s.") % {
            "name": repr(name),
            "names": ", ".join(handler_names()),
        }


def test_field_errors_are_in_korean_for_a_korean_caller_under_the_same_field_names(api):
    # when
    response = api("admin").post(JOBS, BAD_JOB, format="json", HTTP_ACCEPT_LANGUAGE="ko")

    # then
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "invalid"
    assert body["detail"] == korean("Invalid input.")
    assert body["errors"] == {"handler_name": [no_handler("no-such-handler", "ko")]}
    assert HANGUL.search(body["errors"]["handler_name"][0])
    assert "'no-such-handler'" in body["errors"]["handler_name"][0]  # the placeholder filled
    assert response["Content-Language"] == "ko"
    assert not BatchJob.objects.exists()


@pytest.mark.parametrize("accept_language", ["en", "en-US,en;q=0.9", None])
def test_field_errors_are_in_english_for_an_english_caller_or_one_who_asks_for_none(
    api, accept_language
):
    # given
    headers = {"HTTP_ACCEPT_LANGUAGE": accept_language} if accept_language else {}

    # when
    response = api("admin").post(JOBS, BAD_JOB, format="json", **headers)

    # then
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["detail"] == "Invalid input."
    assert body["errors"]["handler_name"][0].startswith(
        "No handler named 'no-such-handler'; registered: "
    )
    assert response["Content-Language"] == "en"


def test_the_language_cookie_wins_over_accept_language(api, settings):
    # given: the console's language selector chose Korean; the browser asks for English
    client = api("admin")
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ko"

    # when
    response = client.post(JOBS, BAD_JOB, format="json", HTTP_ACCEPT_LANGUAGE="en")

    # then
    message = response.json()["errors"]["handler_name"][0]
    assert message == no_handler("no-such-handler", "ko") and HANGUL.search(message)
    assert response["Content-Language"] == "ko"


def test_drf_own_messages_are_in_korean(api):
    # when: no name, and a queue that is not a string
    response = api("admin").post(
        JOBS, {"kind": "handler", "handler_name": "noop", "queue": 5}, format="json",
        HTTP_ACCEPT_LANGUAGE="ko",
    )  # fmt: skip

    # then
    assert response.status_code == 400, response.json()
    errors = response.json()["errors"]
    assert errors["name"] == [korean("This field is required.")]
    assert errors["queue"] == [korean("Not a valid string.")]


@pytest.mark.parametrize(
    ("path", "english", "korean_message", "values"),
    [
        (
            reverse("api:job-detail", args=[MISSING]),
            f"no job {MISSING}",
            "no %(object)s %(id)s",
            {"object": BatchJob._meta.verbose_name, "id": MISSING},
        ),
        (
            reverse("api:execution-detail", args=[MISSING]),
            f"no execution {MISSING}",
            "no execution %(id)s",
            {"id": MISSING},
        ),
    ],
    ids=["view", "selector"],
)
def test_not_found_is_in_the_caller_s_language(api, path, english, korean_message, values):
    # when
    in_korean = api("admin").get(path, HTTP_ACCEPT_LANGUAGE="ko")
    in_english = api("admin").get(path, HTTP_ACCEPT_LANGUAGE="en")

    # then
    assert in_korean.status_code == in_english.status_code == 404
    assert in_korean.json() == {"detail": korean(korean_message, **values), "code": "not_found"}
    assert in_english.json() == {"detail": english, "code": "not_found"}
    assert in_korean["Content-Language"] == "ko"


def test_conflict_is_in_the_caller_s_language(api):
    # given: only HTTP jobs can be test-fired
    job = handler_job("noop")
    path = reverse("api:job-test-fire", args=[job.pk])

    # when
    in_korean = api("admin").post(path, HTTP_ACCEPT_LANGUAGE="ko")
    in_english = api("admin").post(path, HTTP_ACCEPT_LANGUAGE="en")

    # then
    assert in_korean.status_code == in_english.status_code == 409
    message = "job %(name)s is a %(kind)s job; only HTTP jobs can be test-fired"
    assert in_korean.json() == {
        "detail": korean(message, name=repr(job.name), kind="handler"),
        "code": "conflict",
    }
    assert in_english.json() == {
        "detail": f"job {job.name!r} is a handler job; only HTTP jobs can be test-fired",
        "code": "conflict",
    }
    assert in_korean["Content-Language"] == "ko"


def test_permission_refusal_is_in_the_caller_s_language(api):
    # when: a reader may not create jobs
    response = api("reader").post(JOBS, BAD_JOB, format="json", HTTP_ACCEPT_LANGUAGE="ko")

    # then
    assert response.status_code == 403
    assert response.json() == {
        "detail": korean("You do not have the permission this operation needs."),
        "code": "permission_denied",
    }


def test_a_cron_schedule_is_described_in_the_caller_s_language(api):
    # given
    job = handler_job("noop")
    schedule = reverse("api:schedule-list")
    created = api("admin").post(
        schedule, {"job": job.pk, "kind": "cron", "cron_expression": "*/15 * * * *"}, format="json"
    )
    assert created.status_code == 201, created.json()
    detail = reverse("api:schedule-detail", args=[created.json()["id"]])

    # when
    in_korean = api("admin").get(detail, HTTP_ACCEPT_LANGUAGE="ko").json()
    in_english = api("admin").get(detail, HTTP_ACCEPT_LANGUAGE="en").json()

    # then: the describer's own Korean, not the machine's locale
    assert in_korean["cron_description"] == "매 15분마다, 매시마다"
    assert in_english["cron_description"] == "Every 15 minutes"
    assert in_korean["kind"] == in_english["kind"] == "cron"


def test_a_path_the_api_does_not_have_is_refused_in_the_caller_s_language(api):
    # when
    response = api("admin").get("/api/v1/nowhere", HTTP_ACCEPT_LANGUAGE="ko")

    # then
    assert response.status_code == 404
    assert response.json() == {
        "detail": korean("No API endpoint at %(path)s.", path="/api/v1/nowhere"),
        "code": "not_found",
    }
