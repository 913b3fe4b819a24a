"""`batchjobs run --logical-time`: the instant the run stands for, named when it is bad."""

import json
from datetime import UTC, datetime

import pytest
from django.core.management import call_command

from batchjobs.models import BatchLog
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db


def test_run_for_a_logical_time_prints_its_period(capsys, settings):
    settings.TIME_ZONE = "Asia/Seoul"
    job = handler_job("noop")
    call_command("batchjobs", "run", job.name, "--logical-time", "2027-01-04T09:00", "--json")

    output = json.loads(capsys.readouterr().out)

    assert BatchLog.objects.get(pk=output["id"]).logical_time == datetime(2027, 1, 4, tzinfo=UTC)
    printed = {
        datetime.fromisoformat(output[name]) for name in ("logical_time", "data_interval_end")
    }
    assert printed == {datetime(2027, 1, 4, tzinfo=UTC)}


def test_a_bad_logical_time_exits_2_naming_the_option(capsys):
    job = handler_job("noop")
    with pytest.raises(SystemExit) as exited:
        call_command("batchjobs", "run", job.name, "--logical-time", "monday", "--json")

    output = json.loads(capsys.readouterr().out)
    assert exited.value.code == 2
    assert "--logical-time" in output["fields"]
    assert not BatchLog.objects.exists()
