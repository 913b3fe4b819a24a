"""A URL the SSRF guard and the connection could read differently is refused by the API with a
400 naming the field, and nothing is saved."""

import pytest
from django.urls import reverse

from batchjobs.models import BatchJob

pytestmark = pytest.mark.django_db


def test_a_backslash_url_is_refused_with_a_400_naming_http_url(api, settings):
    # given 127.0.0.1:18801 on the allow-list; the connection would have gone to port 18999
    settings.BATCHJOBS_HTTP_ALLOWLIST = ["127.0.0.1:18801"]

    # when
    response = api("admin").post(
        reverse("api:job-list"),
        {"name": "hop", "kind": "http", "http_url": "http://127.0.0.2:18999\\@127.0.0.1:18801/"},
        format="json",
    )

    # then
    assert response.status_code == 400, response.json()
    assert response.json()["errors"] == {
        "http_url": ["the URL contains a backslash, which parsers read differently"]
    }
    assert not BatchJob.objects.exists()
