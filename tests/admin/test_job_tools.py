"""The jobs admin's tools: tags on the form (audited), in the list and its filter, bulk
actions (add and remove a tag, enable, disable, run now, export), export in the command line's
format, import with its dry run then confirmation, clone, and the job page's history."""

import io
import json
from datetime import timedelta

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone

from batchjobs.models import (
    AuditEntry,
    BatchJob,
    BatchLog,
    BatchSchedule,
    ExecutionStatus,
    JobTag,
    Trigger,
)
from batchjobs.services.jobs import job_tags_set
from batchjobs.services.schedules import schedule_create
from tests.admin.test_sql_permission import NEEDS_IT, SQL_PARAMS
from tests.support.admin_forms import job_form_data
from tests.support.factories import handler_job, http_job

pytestmark = pytest.mark.django_db

LIST = "/admin/batchjobs/batchjob/"


def tags_of(job) -> list[str]:
    return sorted(job.tags.values_list("name", flat=True))


@pytest.fixture
def jobs():
    nightly = http_job("https://example.com/nightly", name="nightly")
    hourly = http_job("https://example.com/hourly", name="hourly")
    other = http_job("https://example.com/other", name="other")
    job_tags_set(job=nightly, names=["team-a", "reports"])
    job_tags_set(job=hourly, names=["team-a"])
    schedule_create(job=nightly, kind="cron", cron_expression="0 2 * * *", timezone="Asia/Seoul")
    return nightly, hourly, other


def action(admin_client, name: str, jobs, **extra):
    data = {"action": name, "_selected_action": [job.pk for job in jobs], **extra}
    return admin_client.post(LIST, data)


# --- tags in the list ---------------------------------------------------------------------


def test_the_list_shows_tags_and_filters_by_one(admin_client, jobs, django_assert_max_num_queries):
    nightly, hourly, other = jobs
    page = admin_client.get(LIST)
    assert page.status_code == 200
    html = page.content.decode()
    assert f'bj-tag" href="{LIST}?tags__name=team-a">team-a</a>' in html

    filtered = admin_client.get(LIST, {"tags__name": "team-a"})
    assert [job.name for job in filtered.context["cl"].result_list] == ["hourly", "nightly"]
    reports = admin_client.get(LIST, {"tags__name": "reports"})
    assert [job.name for job in reports.context["cl"].result_list] == ["nightly"]
    # the tags are read once for the page, not once per job
    for n in range(30):
        job_tags_set(job=http_job("https://example.com/x", name=f"more-{n}"), names=["team-b"])
    with django_assert_max_num_queries(20):
        assert admin_client.get(LIST).status_code == 200


def test_the_form_saves_tags_through_the_audited_service(admin_client, admin_user):
    team = JobTag.objects.create(name="team-a")
    response = admin_client.post(f"{LIST}add/", job_form_data(name="tagged", tags=[team.pk]))
    assert response.status_code == 302, response.context["adminform"].form.errors
    job = BatchJob.objects.get(name="tagged")
    assert tags_of(job) == ["team-a"]
    entry = AuditEntry.objects.get(job=job, changes__has_key="tags")
    assert (entry.actor, entry.changes["tags"]) == (admin_user, [[], ["team-a"]])


# --- bulk actions -------------------------------------------------------------------------


def test_add_a_tag_asks_for_it_then_tags_every_selected_job(admin_client, jobs, admin_user):
    nightly, hourly, other = jobs

    asked = action(admin_client, "add_tag", [hourly, other])
    assert asked.status_code == 200
    assert "tag_jobs.html" in asked.templates[0].name
    assert BatchJob.objects.get(name="other").tags.count() == 0  # nothing yet

    done = action(admin_client, "add_tag", [hourly, other], apply="1", tag="nightly-batch")
    assert done.status_code == 302
    assert tags_of(hourly) == ["nightly-batch", "team-a"]
    assert tags_of(other) == ["nightly-batch"]
    assert AuditEntry.objects.filter(job=other, changes__has_key="tags", actor=admin_user).exists()


def test_a_bad_tag_is_refused_on_the_field_and_tags_nothing(admin_client, jobs):
    nightly, hourly, other = jobs
    refused = action(admin_client, "add_tag", [hourly, other], apply="1", tag="has space")
    assert refused.status_code == 200
    assert "Use letters" in " ".join(refused.context["form"].errors["tag"])
    assert (tags_of(hourly), tags_of(other)) == (["team-a"], [])
    assert not JobTag.objects.filter(name="has space").exists()


def test_remove_a_tag_from_the_selected_jobs(admin_client, jobs):
    nightly, hourly, other = jobs
    done = action(admin_client, "remove_tag", [nightly, hourly, other], apply="1", tag="team-a")
    assert done.status_code == 302
    assert (tags_of(nightly), tags_of(hourly), tags_of(other)) == (["reports"], [], [])


def test_enable_disable_and_run_now_act_on_the_selection(admin_client, jobs):
    nightly, hourly, other = jobs
    assert action(admin_client, "disable", [nightly, hourly]).status_code == 302
    assert list(BatchJob.objects.filter(enabled=True).values_list("name", flat=True)) == ["other"]
    assert action(admin_client, "enable", [nightly]).status_code == 302
    assert action(admin_client, "run_now", [nightly, other]).status_code == 302
    assert sorted(BatchLog.objects.values_list("job__name", flat=True)) == ["nightly", "other"]


# --- export -------------------------------------------------------------------------------


def cli_export(*args: str) -> str:
    out = io.StringIO()
    call_command("batchjobs", "export", *args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_export_all_downloads_what_the_command_line_writes(admin_client, jobs, fmt):
    response = admin_client.get(f"{LIST}export/", {"format": fmt})
    assert response.status_code == 200
    assert response["Content-Type"].startswith(f"application/{fmt}")
    assert response["Content-Disposition"].endswith(f'.{fmt}"')
    assert response.content.decode() == cli_export("--format", fmt)
    document = (json.loads if fmt == "json" else yaml.safe_load)(response.content)
    assert [job["tags"] for job in document["jobs"]] == [["team-a"], ["reports", "team-a"], []]


def test_export_of_the_selected_jobs_is_the_command_lines_export_of_those(admin_client, jobs):
    nightly, hourly, other = jobs
    response = action(admin_client, "export_yaml", [nightly, other])
    assert response.status_code == 200
    expected = cli_export("--job", "nightly", "--job", "other", "--format", "yaml")
    assert response.content.decode() == expected


def test_export_refuses_an_unknown_format_naming_it(admin_client):
    response = admin_client.get(f"{LIST}export/", {"format": "xml"})
    assert response.status_code == 400
    assert b"format" in response.content


# --- import -------------------------------------------------------------------------------


def upload(admin_client, text: str, name: str = "jobs.yaml"):
    file = SimpleUploadedFile(name, text.encode(), content_type="application/octet-stream")
    return admin_client.post(f"{LIST}import/", {"file": file, "format": ""})


def test_import_shows_the_dry_run_then_imports_on_confirmation(admin_client, jobs):
    nightly, hourly, other = jobs
    document = yaml.safe_load(cli_export("--format", "yaml"))
    by_name = {job["name"]: job for job in document["jobs"]}
    by_name["hourly"]["timeout_seconds"] = 99
    by_name["nightly"]["schedules"][0]["cron_expression"] = "0 3 * * *"
    by_name["nightly"]["tags"] = ["reports"]
    document["jobs"].append({**by_name["other"], "name": "brand-new", "tags": ["fresh"]})
    text = yaml.safe_dump(document, sort_keys=False)

    # the dry run: what would change, per job, and nothing changed yet
    preview = upload(admin_client, text)
    assert preview.status_code == 200
    outcomes = {
        job["name"]: (job["outcome"], job["fields"]) for job in preview.context["result"].jobs
    }
    assert outcomes == {
        "hourly": ("updated", ["timeout_seconds"]),
        "nightly": ("updated", ["tags", "schedules[0].cron_expression"]),
        "other": ("unchanged", []),
        "brand-new": ("created", []),
    }
    assert not BatchJob.objects.filter(name="brand-new").exists()
    assert BatchJob.objects.get(name="hourly").timeout_seconds != 99
    assert 'id="import_confirm_form"' in preview.content.decode()

    # confirmed: the document the page carried is imported
    confirm = preview.context["confirm"]
    done = admin_client.post(
        f"{LIST}import/",
        {"confirm": "1", "document": confirm.initial["document"], "format": "yaml"},
    )
    assert done.status_code == 302
    assert BatchJob.objects.get(name="hourly").timeout_seconds == 99
    assert tags_of(BatchJob.objects.get(name="brand-new")) == ["fresh"]
    assert tags_of(nightly) == ["reports"]
    assert BatchSchedule.objects.get(job=nightly).cron_expression == "0 3 * * *"


def test_import_errors_name_the_job_and_field_and_nothing_changes(admin_client, jobs):
    document = {
        "version": 1,
        "jobs": [
            {"name": "one.two", "kind": "http", "http_url": "ftp://x", "tags": ["bad tag"]},
            {"name": "fine", "kind": "http", "http_url": "https://example.com/"},
            {"name": "three", "kind": "http", "http_url": "https://example.com/",
             "timeout_seconds": "soon"},
        ],
    }  # fmt: skip
    refused = upload(admin_client, json.dumps(document), name="jobs.json")
    assert refused.status_code == 200
    rows = refused.context["errors"]
    assert {(owner, field) for owner, field, _message in rows} == {
        ("one.two", "http_url"),
        ("one.two", "tags"),
        ("three", "timeout_seconds"),
    }
    assert "result" not in refused.context
    assert not BatchJob.objects.filter(name__in=["one.two", "fine", "three"]).exists()


def test_an_unreadable_file_is_an_error_on_file(admin_client):
    refused = upload(admin_client, "jobs: [", name="jobs.yaml")
    assert refused.status_code == 200
    assert [(owner, field) for owner, field, _m in refused.context["errors"]] == [("", "file")]


def test_import_needs_the_permissions_to_write_jobs_and_schedules(staff_client):
    client = staff_client("view_batchjob", "view_batchschedule")
    assert client.get(f"{LIST}import/").status_code == 403
    assert client.get(f"{LIST}export/", {"format": "json"}).status_code == 200


# --- clone --------------------------------------------------------------------------------


def test_clone_from_the_job_page_lands_on_the_copy(admin_client, jobs):
    nightly, hourly, other = jobs
    page = admin_client.get(f"{LIST}{nightly.pk}/change/")
    assert f'href="{LIST}{nightly.pk}/clone/"' in page.content.decode()

    asked = admin_client.get(f"{LIST}{nightly.pk}/clone/")
    assert asked.context["form"].initial["name"] == "copy of nightly"
    assert "paused" in asked.content.decode()

    done = admin_client.post(f"{LIST}{nightly.pk}/clone/", {"name": "nightly-2"})
    clone = BatchJob.objects.get(name="nightly-2")
    assert done.status_code == 302
    assert done["Location"] == f"{LIST}{clone.pk}/change/"
    assert (clone.enabled, tags_of(clone)) == (False, ["reports", "team-a"])
    assert list(clone.schedules.values_list("paused", flat=True)) == [True]


def test_clone_with_a_taken_name_is_refused_on_name_saving_nothing(admin_client, jobs):
    nightly, hourly, other = jobs
    count = BatchJob.objects.count()
    refused = admin_client.post(f"{LIST}{nightly.pk}/clone/", {"name": "hourly"})
    assert refused.status_code == 200
    assert "already exists" in " ".join(refused.context["form"].errors["name"])
    assert BatchJob.objects.count() == count


def test_clone_needs_the_add_permission(staff_client, jobs):
    client = staff_client("view_batchjob", "change_batchjob")
    assert client.get(f"{LIST}{jobs[0].pk}/clone/").status_code == 403
    assert "clone-job-link" not in client.get(f"{LIST}{jobs[0].pk}/change/").content.decode()


# --- history ------------------------------------------------------------------------------


def test_the_job_page_shows_its_history(admin_client, jobs):
    nightly = jobs[0]
    now = timezone.now()
    for minutes, status in ((1, ExecutionStatus.COMPLETED), (2, ExecutionStatus.FAILED)):
        execution = BatchLog.objects.create(
            job=nightly, trigger=Trigger.SCHEDULE, status=status, attempts=1, max_attempts=1,
            started_at=now - timedelta(seconds=30), finished_at=now, error="Boom: it broke",
        )  # fmt: skip
        BatchLog.objects.filter(pk=execution.pk).update(created_at=now - timedelta(minutes=minutes))

    html = admin_client.get(f"{LIST}{nightly.pk}/change/").content.decode()

    assert 'id="job-history"' in html
    assert html.count('<rect class="bar"') == 2  # today's bar, stacked: one per status
    assert "50.0%" in html  # 1 of 2 ended runs completed
    assert "Boom: it broke" in html
    assert html.count('<tr data-execution="') == 2


# --- a job only some may save -------------------------------------------------------------


def test_cloning_or_importing_a_sql_job_without_its_permission_is_refused_not_a_500(
    staff_client,
):
    sql_job = handler_job("sql", name="sql-report", params=SQL_PARAMS)
    client = staff_client(
        "add_batchjob", "change_batchjob", "view_batchjob", "add_batchschedule",
        "change_batchschedule", "delete_batchschedule", "view_batchschedule",
    )  # fmt: skip

    refused = client.post(f"{LIST}{sql_job.pk}/clone/", {"name": "sql-copy"})
    assert refused.status_code == 200
    assert NEEDS_IT in " ".join(refused.context["form"].non_field_errors())

    document = {"jobs": [{"name": "sql-imported", "kind": "handler", "handler_name": "sql",
                          "params": SQL_PARAMS}]}  # fmt: skip
    file = SimpleUploadedFile("jobs.json", json.dumps(document).encode())
    refused = client.post(f"{LIST}import/", {"file": file, "format": ""})
    assert refused.status_code == 200
    assert any(NEEDS_IT in message for _owner, _field, message in refused.context["errors"])
    assert BatchJob.objects.filter(name__startswith="sql-").count() == 1
