"""The tutorial's pages /docs, /crons and /jobs lead to the product's."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/docs", "/api/docs/"),
        ("/docs/", "/api/docs/"),
        ("/crons", "/admin/batchjobs/batchschedule/"),
        ("/jobs", "/admin/batchjobs/batchjob/"),
        ("/jobs/", "/admin/batchjobs/batchjob/"),
        ("/jobs?q=nightly", "/admin/batchjobs/batchjob/?q=nightly"),
    ],
)
def test_the_tutorials_page_redirects_to_the_products(client, admin_user, path, target):
    client.force_login(admin_user)

    response = client.get(path)
    landed = client.get(path, follow=True)

    assert (response.status_code, response["Location"]) == (302, target)
    assert landed.status_code == 200
