"""`manage.py batchjobs`: list / status / preview / stop / restart / abandon with --json and exit
codes, jobs as code (export -> delete -> import, exactly), and API tokens."""

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.authtoken.models import Token

from batchjobs.models import BatchJob, BatchLog, BatchSchedule, ExecutionStatus, Trigger
from batchjobs.secrets import secret_decrypt
from batchjobs.services import operator
from batchjobs.services.jobs import job_create
from batchjobs.services.schedules import schedule_create
from tests.support.factories import handler_job, http_job
from tests.support.processes import ROOT, process_env
from tests.support.runs import run_in_process

pytestmark = pytest.mark.django_db

EXIT_OK, EXIT_NOT_COMPLETED, EXIT_BAD_INPUT, EXIT_WAIT_TIMEOUT, EXIT_CONFLICT = 0, 1, 2, 3, 4


def cli(*args: str) -> tuple[int, Any]:
    """Run the command with --json; its exit code and the JSON it printed."""
    out = StringIO()
    try:
        call_command("batchjobs", *args, "--json", stdout=out)
        code = EXIT_OK
    except SystemExit as exited:
        code = exited.code
    return code, json.loads(out.getvalue())


def cli_text(*args: str) -> str:
    out = StringIO()
    call_command("batchjobs", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def failed_batch() -> BatchLog:
    """A FAILED execution of tests.numbers: the load step passed its skip limit."""
    execution = run_in_process(
        operator.job_start(
            job_name="tests.numbers", params={"run": 1, "count": 10, "bad": [2, 3, 4, 5]}
        )
    )
    assert execution.status == ExecutionStatus.FAILED
    return execution


# --- list, status, preview -------------------------------------------------------------------


def test_list_shows_jobs_with_their_latest_execution():
    job = handler_job("noop", name="nightly")
    BatchSchedule.objects.create(job=job, kind="interval", interval_every=5)
    latest = BatchLog.objects.create(job=job, trigger=Trigger.API, status=ExecutionStatus.FAILED)

    code, jobs = cli("list")
    text = cli_text("list")

    assert code == EXIT_OK
    (row,) = jobs
    assert (row["name"], row["schedule_count"]) == ("nightly", 1)
    assert row["latest_execution"]["id"] == latest.pk
    assert "nightly\thandler\tenabled\t1 schedule(s)\tlatest: FAILED\tnoop" in text


def test_status_of_the_scheduler():
    job = handler_job("noop", name="soon")
    BatchLog.objects.create(job=job, trigger=Trigger.API, status=ExecutionStatus.QUEUED)
    schedule = schedule_create(job=job, kind="once", delay_seconds=60)

    code, status = cli("status")
    text = cli_text("status")

    assert code == EXIT_OK
    assert status["executions"]["QUEUED"] == 1
    assert status["next_due"]["schedule"] == schedule.pk
    assert status["total_jobs"] == 1
    assert f"next due: soon (schedule {schedule.pk}, once)" in text
    assert "executions: QUEUED 1" in text


def test_status_of_an_execution_shows_its_steps(failed_batch):
    code, status = cli("status", str(failed_batch.pk))
    text = cli_text("status", str(failed_batch.pk))

    assert code == EXIT_OK
    assert (status["id"], status["status"]) == (failed_batch.pk, "FAILED")
    assert [(step["step"], step["status"]) for step in status["steps"]] == [("load", "FAILED")]
    assert f"execution {failed_batch.pk} of tests.numbers: FAILED" in text
    assert "load: FAILED read" in text


def test_preview_lists_the_next_fires():
    schedule = BatchSchedule.objects.create(
        job=handler_job("noop"), kind="cron", cron_expression="0 9 * * 1-5",
        timezone="America/New_York",
    )  # fmt: skip

    code, preview = cli("preview", str(schedule.pk), "--count", "3")
    text = cli_text("preview", str(schedule.pk), "--count", "2")

    assert code == EXIT_OK
    assert len(preview["fires"]) == 3
    assert all("T09:00:00-0" in fire["local"] for fire in preview["fires"])
    assert len([line for line in text.splitlines() if "T09:00:00" in line]) == 2


@pytest.mark.parametrize(
    "args",
    [
        ("status", "987654"),
        ("preview", "987654"),
        ("stop", "987654"),
        ("restart", "987654"),
        ("abandon", "987654"),
    ],
)
def test_unknown_ids_exit_2_with_a_message(args):
    code, error = cli(*args)

    assert code == EXIT_BAD_INPUT
    assert "987654" in error["error"]


def test_preview_count_out_of_range_exits_2_naming_count():
    schedule = BatchSchedule.objects.create(
        job=handler_job("noop"), kind="interval", interval_every=1
    )

    code, error = cli("preview", str(schedule.pk), "--count", "0")

    assert code == EXIT_BAD_INPUT
    assert "count" in error["fields"]


# --- stop, restart, abandon ------------------------------------------------------------------


def test_stop_a_queued_execution_then_again_is_a_conflict():
    execution = operator.job_start(job_name=handler_job("noop").name)

    code, stopped = cli("stop", str(execution.pk))
    again, error = cli("stop", str(execution.pk))

    assert (code, stopped["status"]) == (EXIT_OK, "STOPPED")
    assert again == EXIT_CONFLICT
    assert "cannot be stopped" in error["error"]


def test_restart_a_failed_execution_then_again_is_a_conflict(failed_batch):
    code, restarted = cli("restart", str(failed_batch.pk))
    again, error = cli("restart", str(failed_batch.pk))

    assert code == EXIT_OK
    assert (restarted["restart_of"], restarted["status"]) == (failed_batch.pk, "QUEUED")
    assert again == EXIT_CONFLICT
    assert "already restarted" in error["error"]


def test_restart_of_a_completed_execution_is_a_conflict_without_json():
    completed = run_in_process(
        operator.job_start(job_name="tests.numbers", params={"run": 9, "count": 2})
    )
    assert completed.status == ExecutionStatus.COMPLETED

    with pytest.raises(CommandError) as refused:
        call_command("batchjobs", "restart", str(completed.pk))

    assert refused.value.returncode == EXIT_CONFLICT
    assert "only FAILED or STOPPED" in str(refused.value)
    assert BatchLog.objects.count() == 1


def test_abandon_then_restart_is_a_conflict(failed_batch):
    code, abandoned = cli("abandon", str(failed_batch.pk))
    restart, _ = cli("restart", str(failed_batch.pk))

    assert (code, abandoned["status"]) == (EXIT_OK, "ABANDONED")
    assert restart == EXIT_CONFLICT


def test_run_of_a_completed_batch_instance_is_a_conflict():
    run_in_process(operator.job_start(job_name="tests.numbers", params={"run": 4, "count": 2}))

    code, error = cli("run", "tests.numbers", "--param", "run=4", "--param", "count=2")

    assert code == EXIT_CONFLICT
    assert "already completed" in error["error"]
    assert BatchLog.objects.count() == 1


def test_run_with_an_idempotency_key_returns_the_same_execution():
    job = handler_job("noop")

    _, first = cli("run", job.name, "--idempotency-key", "deploy-42")
    _, again = cli("run", job.name, "--idempotency-key", "deploy-42")

    assert first["id"] == again["id"]
    assert BatchLog.objects.get().trigger == Trigger.CLI


@pytest.mark.django_db(transaction=True)
def test_exit_codes_of_the_real_process():
    """What a shell script sees: the process's exit status and a message on stderr."""
    # On a queue no worker reads: a worker another test left running must not take it.
    execution = operator.job_start(job_name=handler_job("noop", queue="parked").name)
    operator.execution_stop(execution_id=execution.pk)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", "batchjobs", *args],
            cwd=ROOT, env=process_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    missing, conflict, fine = run("stop", "987654"), run("stop", str(execution.pk)), run("list")

    assert missing.returncode == EXIT_BAD_INPUT and "no execution 987654" in missing.stderr
    assert conflict.returncode == EXIT_CONFLICT and "cannot be stopped" in conflict.stderr
    assert fine.returncode == EXIT_OK and execution.job.name in fine.stdout


# --- export and import: jobs as code ---------------------------------------------------------


@pytest.fixture
def definitions() -> list[BatchJob]:
    """Jobs of every kind, with schedules of every kind and their policies."""
    soon = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    ping = http_job(
        "http://127.0.0.1:8000/demo/ping",
        name="ping",
        description="Pings the demo endpoint — ünïcode",
        http_method="POST",
        http_body='{"hello": "world"}',
        http_headers=[
            {"name": "Authorization", "value": "Bearer s3cret", "secret": True},
            {"name": "X-Team", "value": "ops", "secret": False},
        ],
        http_expected_status="200,202",
        http_assertion_kind="json_path",
        http_assertion="$.status",
        http_assertion_value='"ok"',
        overlap_policy="skip",
        priority=2,
    )
    schedule_create(
        job=ping, kind="cron", cron_expression="30 2 * * *", timezone="Europe/Berlin",
        dst_gap_policy="shift", dst_fold_policy="both", misfire_policy="catch_up",
        catch_up_max=5, jitter_seconds=30, description="nightly",
    )  # fmt: skip
    schedule_create(job=ping, kind="interval", interval_every=15, interval_unit="minutes",
                    max_runs=100, params={"from": "interval"}, paused=True)  # fmt: skip
    sleeper = handler_job("sleep", name="sleeper", params={"seconds": 0.5}, queue="slow")
    schedule_create(job=sleeper, kind="once", run_at=soon)
    numbers = job_create(
        name="numbers", kind="batch", batch_job_name="tests.numbers", params={"count": 3}
    )
    return [ping, sleeper, numbers]


def export(tmp_path: Path, name: str, *args: str) -> Path:
    path = tmp_path / name
    call_command("batchjobs", "export", "--output", str(path), *args)
    return path


@pytest.mark.parametrize("filename", ["jobs.yaml", "jobs.json"])
def test_export_delete_import_round_trip_is_exact(tmp_path, definitions, filename):
    # given
    exported = export(tmp_path, filename, "--include-secrets")
    before = exported.read_text()

    # when: everything is deleted, then imported from the file
    BatchJob.objects.all().delete()
    code, result = cli("import", str(exported))
    again = export(tmp_path, f"again-{filename}", "--include-secrets")

    # then
    assert code == EXIT_OK
    assert (result["jobs_created"], result["schedules_created"]) == (3, 3)
    assert again.read_text() == before
    assert (
        secret_decrypt(BatchJob.objects.get(name="ping").http_headers[0]["value"])
        == "Bearer s3cret"
    )
    # The fire state is recomputed for the new rows: the once-schedule is due at its time.
    once = BatchSchedule.objects.get(kind="once")
    assert once.next_fire_at == once.run_at


def test_the_export_document_reads_as_written(tmp_path, definitions):
    document = yaml.safe_load(export(tmp_path, "jobs.yaml").read_text())

    assert document["version"] == 1
    assert [job["name"] for job in document["jobs"]] == ["numbers", "ping", "sleeper"]
    ping = document["jobs"][1]
    assert ping["http_headers"][0] == {"name": "Authorization", "value": "••••••", "secret": True}
    assert [schedule["kind"] for schedule in ping["schedules"]] == ["cron", "interval"]
    assert ping["schedules"][0]["timezone"] == "Europe/Berlin"
    assert isinstance(ping["schedules"][1]["start_at"], str)
    assert "next_fire_at" not in ping["schedules"][0] and "id" not in ping


def test_import_is_idempotent_and_keeps_masked_secrets_of_existing_jobs(tmp_path, definitions):
    masked = export(tmp_path, "jobs.yaml")  # secrets masked
    schedule_ids = sorted(BatchSchedule.objects.values_list("pk", flat=True))
    next_fires = sorted(BatchSchedule.objects.values_list("next_fire_at", flat=True))

    code, result = cli("import", str(masked))

    assert code == EXIT_OK
    assert (result["jobs_created"], result["jobs_updated"], result["schedules_updated"]) == (
        0,
        3,
        3,
    )
    assert sorted(BatchSchedule.objects.values_list("pk", flat=True)) == schedule_ids
    assert sorted(BatchSchedule.objects.values_list("next_fire_at", flat=True)) == next_fires
    assert (
        secret_decrypt(BatchJob.objects.get(name="ping").http_headers[0]["value"])
        == "Bearer s3cret"
    )


def test_a_masked_secret_cannot_create_a_job(tmp_path, definitions):
    masked = export(tmp_path, "jobs.yaml")
    BatchJob.objects.all().delete()

    code, error = cli("import", str(masked))

    assert code == EXIT_BAD_INPUT
    assert "ping.http_headers" in error["fields"]
    assert not BatchJob.objects.exists()


def test_import_changes_matches_schedules_by_position_and_deletes_the_rest(tmp_path, definitions):
    path = export(tmp_path, "jobs.json", "--include-secrets")
    document = json.loads(path.read_text())
    ping = next(job for job in document["jobs"] if job["name"] == "ping")
    ping["description"] = "changed"
    ping["schedules"][0]["cron_expression"] = "45 3 * * *"
    del ping["schedules"][1]
    path.write_text(json.dumps(document))
    cron_id = BatchSchedule.objects.filter(kind="cron").get().pk

    code, result = cli("import", str(path))

    assert code == EXIT_OK
    assert result["schedules_deleted"] == 1
    job = BatchJob.objects.get(name="ping")
    assert job.description == "changed"
    assert list(job.schedules.values_list("pk", "cron_expression")) == [(cron_id, "45 3 * * *")]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda doc: doc["jobs"][1].update(timeout_seconds="long"), "ping.timeout_seconds"),
        (lambda doc: doc["jobs"][1].update(colour="red"), "ping.colour"),
        (lambda doc: doc["jobs"][1]["schedules"][0].update(timezone="Moon/Base"),
         "ping.schedules[0].timezone"),
        (lambda doc: doc["jobs"][2].update(handler_name="missing"), "sleeper.handler_name"),
        (lambda doc: doc["jobs"].append(dict(doc["jobs"][0])), "jobs[3].name"),
        (lambda doc: doc.update(version=2), "version"),
    ],
)  # fmt: skip
def test_a_bad_file_exits_2_naming_the_field_and_changes_nothing(
    tmp_path, definitions, mutate, field
):
    path = export(tmp_path, "jobs.json", "--include-secrets")
    document = json.loads(path.read_text())
    document["jobs"][0]["description"] = "would change"  # a valid change before the bad one
    mutate(document)
    path.write_text(json.dumps(document))

    code, error = cli("import", str(path))

    assert code == EXIT_BAD_INPUT
    assert field in error["fields"], error
    assert BatchJob.objects.get(name="numbers").description == ""


def test_unreadable_files_exit_2(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("jobs: [\n  - name: x\n    kind: [unclosed\n")

    unreadable, error = cli("import", str(broken))
    missing, _ = cli("import", str(tmp_path / "absent.yaml"))

    assert unreadable == missing == EXIT_BAD_INPUT
    assert "file" in error["fields"]


def test_dry_run_checks_and_changes_nothing(tmp_path, definitions):
    path = export(tmp_path, "jobs.yaml", "--include-secrets")
    BatchJob.objects.all().delete()

    code, result = cli("import", str(path), "--dry-run")

    assert code == EXIT_OK
    assert (result["dry_run"], result["jobs_created"]) == (True, 3)
    assert not BatchJob.objects.exists()


def test_export_of_named_jobs_only_and_of_an_unknown_name(tmp_path, definitions):
    code, document = cli("export", "--job", "sleeper")
    unknown, error = cli("export", "--job", "nope")

    assert code == EXIT_OK
    assert [job["name"] for job in document["jobs"]] == ["sleeper"]
    assert unknown == EXIT_BAD_INPUT and "nope" in error["error"]


# --- API tokens ------------------------------------------------------------------------------


def test_token_create_rotate_and_revoke(django_user_model):
    django_user_model.objects.create_user(username="robot", password="x")

    _, created = cli("token", "create", "robot")
    _, same = cli("token", "create", "robot")
    _, rotated = cli("token", "create", "robot", "--rotate")
    printed = cli_text("token", "create", "robot").strip()
    _, revoked = cli("token", "revoke", "robot")
    unknown, _ = cli("token", "create", "nobody")

    assert created["created"] is True and same["token"] == created["token"]
    assert rotated["token"] != created["token"] and printed == rotated["token"]
    assert revoked == {"username": "robot", "revoked": True}
    assert not Token.objects.exists()
    assert unknown == EXIT_BAD_INPUT


def test_a_created_token_authenticates_against_the_api(django_user_model, client):
    django_user_model.objects.create_superuser(username="robot", password="x")
    _, created = cli("token", "create", "robot")

    response = client.get("/api/v1/jobs", HTTP_AUTHORIZATION=f"Token {created['token']}")

    assert response.status_code == 200
