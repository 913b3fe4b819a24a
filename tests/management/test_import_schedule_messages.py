"""The command line's import refuses a schedule with the same words as the console and the API:
the cron field and its range, the real zone a typo stands for."""

import json

import pytest

from batchjobs.models import BatchJob
from tests.management.test_cli import EXIT_BAD_INPUT, cli

pytestmark = pytest.mark.django_db


def test_import_names_the_cron_field_and_suggests_the_zone(tmp_path):
    path = tmp_path / "jobs.json"
    schedule = {"kind": "cron", "cron_expression": "61 * * * *", "timezone": "Asia/Seul"}
    job = {"name": "seoul", "kind": "handler", "handler_name": "noop", "schedules": [schedule]}
    path.write_text(json.dumps({"version": 1, "jobs": [job]}))

    code, error = cli("import", str(path))

    assert code == EXIT_BAD_INPUT
    assert error["fields"]["seoul.schedules[0].cron_expression"] == [
        "minute field: 61 is out of range 0–59."
    ]
    assert "Did you mean Asia/Seoul?" in error["fields"]["seoul.schedules[0].timezone"]
    assert not BatchJob.objects.exists()
