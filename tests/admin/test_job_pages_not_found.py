"""A job's tool pages (run, test fire, clone) for a job that is not there: Django's own
not-found redirect to the console's home with its message, never a 404 or a 500."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url_name",
    ["admin:batchjobs_batchjob_run", "admin:batchjobs_batchjob_test_fire",
     "admin:batchjobs_batchjob_clone"],
)  # fmt: skip
def test_a_missing_job_redirects_home_with_a_message(admin_client, url_name):
    response = admin_client.get(reverse(url_name, args=[987654]), follow=True)

    assert response.redirect_chain == [(reverse("admin:index"), 302)]
    assert "987654" in str(list(response.context["messages"])[0])
