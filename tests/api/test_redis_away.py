"""With the shared cache's Redis away, the API's description still answers and every operation is
refused with a clear 503 (its rate limit cannot be counted), never a 500, never unthrottled."""

import pytest
from django.urls import reverse

from batchjobs.models import BatchJob

pytestmark = pytest.mark.django_db

JOB = {"name": "redis-away", "kind": "handler", "handler_name": "noop"}


def test_the_schema_and_the_docs_answer_without_redis(api, cache_redis):
    cache_redis.stop()

    schema = api("anonymous").get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    docs = api("anonymous").get("/api/docs/")

    assert schema.status_code == 200
    # ... and it documents the 503 that operations answer meanwhile
    assert "503" in schema.json()["paths"]["/api/v1/jobs"]["get"]["responses"]
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()


def test_an_operation_is_refused_with_503_while_its_rate_limit_cannot_be_counted(api, cache_redis):
    admin = api("admin")
    assert admin.get(reverse("api:job-list")).status_code == 200

    cache_redis.stop()
    listed = admin.get(reverse("api:job-list"))
    created = admin.post(reverse("api:job-list"), JOB, format="json")

    assert listed.status_code == created.status_code == 503
    assert listed.json() == {
        "detail": "rate limiting store unavailable: the shared cache (Redis) cannot be reached; "
        "try again later.",
        "code": "unavailable",
    }
    assert not BatchJob.objects.filter(name=JOB["name"]).exists()


def test_the_dashboard_answers_without_redis(client, make_user, cache_redis):
    # Logging in resets the failed-login count in the cache: a login goes on without it.
    cache_redis.stop()
    client.force_login(make_user("admin"))

    response = client.get(reverse("admin:batchjobs_dashboard"))

    assert response.status_code == 200
