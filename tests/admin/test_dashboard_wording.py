"""The dashboard's times until a fire and since a failure, counted as the rest of the console
counts them: "in 19 s" for a fire 19 s away (Django's timeuntil said "0 minutes")."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from batchjobs.models import BatchLog, ExecutionStatus, Trigger
from batchjobs.services.schedules import schedule_create
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db

LIVE = reverse("admin:batchjobs_dashboard_live")


def section_text(content: str, section: str) -> str:
    part = content[content.index(f'id="{section}"') :]
    part = part[: part.index("</table>")]
    return " ".join(re.sub("<[^>]+>", " ", part).split())


def test_a_fire_19_seconds_away_reads_in_seconds_and_a_failure_in_minutes_ago(admin_client):
    job = handler_job("noop", name="soon")
    schedule_create(job=job, kind="once", run_at=timezone.now() + timedelta(seconds=19.5))
    now = timezone.now()
    BatchLog.objects.create(
        job=job, trigger=Trigger.MANUAL, status=ExecutionStatus.FAILED, error="boom",
        created_at=now - timedelta(minutes=4), finished_at=now - timedelta(minutes=3, seconds=5),
    )  # fmt: skip

    with translation.override("en"):
        content = admin_client.get(LIVE, HTTP_ACCEPT_LANGUAGE="en").content.decode()

    upcoming, failures = section_text(content, "upcoming"), section_text(content, "failures")
    assert re.search(r"\(in 1[89] s\) .* in 1[89] s", upcoming), upcoming
    assert "0 minutes" not in upcoming
    assert "3 min ago" in failures, failures
