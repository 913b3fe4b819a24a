"""The API refuses a schedule with the same words as the console: the cron field and its
range, the real zone a typo stands for, an interval with its plural."""

import pytest
from django.urls import reverse

from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db

SCHEDULES = reverse("api:schedule-list")


def test_a_bad_cron_and_a_typo_zone_are_named_by_field(api):
    job = handler_job("noop", name="seoul")

    response = api("operator").post(
        SCHEDULES,
        {"job": job.pk, "kind": "cron", "cron_expression": "0 24 * * *", "timezone": "Asia/Seul"},
        format="json",
    )

    assert response.status_code == 400
    body = response.json()["errors"]
    assert body["cron_expression"] == ["hour field: 24 is out of range 0–23."], body
    assert body["timezone"] == ["Unknown time zone 'Asia/Seul'.", "Did you mean Asia/Seoul?"]
