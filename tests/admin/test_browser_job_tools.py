"""The job tools in Debian's Chromium (Playwright) against a live server: filter the jobs list
by a tag, read a job's history, clone the job from its page and land on the copy, import a file
(dry run, then confirm), at 1400 and 390 px wide. Screenshots go to test-artifacts/; any
browser console error or server error fails the test."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from batchjobs.models import BatchJob, BatchLog, ExecutionStatus, Trigger
from batchjobs.services.definitions import definitions_export, document_dump
from batchjobs.services.jobs import job_tags_set
from batchjobs.services.schedules import schedule_create
from tests.support.browser import ARTIFACTS, PASSWORD, log_in, watch_for_problems
from tests.support.factories import http_job

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_filter_by_tag_read_the_history_clone_and_import(
    live_server, browser_page, django_user_model
):
    page, base = browser_page, live_server.url
    errors = watch_for_problems(page)
    django_user_model.objects.create_superuser("operator", "ops@example.com", PASSWORD)
    report = http_job(f"{base}/demo/ping", name="nightly-report")
    job_tags_set(job=report, names=["team-a", "reports"])
    schedule_create(job=report, kind="cron", cron_expression="0 2 * * *", timezone="Asia/Seoul")
    job_tags_set(job=http_job(f"{base}/demo/ping", name="hourly-sync"), names=["team-b"])
    now = timezone.now()
    for days, status in ((0, ExecutionStatus.COMPLETED), (1, ExecutionStatus.FAILED),
                         (2, ExecutionStatus.COMPLETED)):  # fmt: skip
        run = BatchLog.objects.create(
            job=report, trigger=Trigger.SCHEDULE, status=status, attempts=1, max_attempts=1,
            started_at=now - timedelta(days=days, seconds=20),
            finished_at=now - timedelta(days=days),
            error="TimeoutError: upstream too slow" if status == ExecutionStatus.FAILED else "",
        )  # fmt: skip
        BatchLog.objects.filter(pk=run.pk).update(created_at=now - timedelta(days=days, seconds=30))

    log_in(page, base)

    # --- the jobs list, filtered by a tag clicked in it -------------------------------------
    page.goto(f"{base}/admin/batchjobs/batchjob/")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    page.locator("#result_list a.bj-tag", has_text="team-a").click()
    expect(page).to_have_url(f"{base}/admin/batchjobs/batchjob/?tags__name=team-a")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("nightly-report")
    expect(page.locator("#changelist-filter")).to_contain_text("team-a")
    page.screenshot(path=ARTIFACTS / "jobs-filtered-by-tag.png", full_page=True)

    # --- the job's page: its history ------------------------------------------------------
    page.click("#result_list a:has-text('nightly-report')")
    history = page.locator("#job-history")
    expect(history).to_be_visible()
    expect(history.locator("#job-history-chart rect.bar")).to_have_count(3)
    expect(history.locator("#job-history-runs tbody tr")).to_have_count(3)
    expect(history.locator("#job-history-stats")).to_contain_text("66.7%")
    expect(history).to_contain_text("TimeoutError: upstream too slow")
    history.screenshot(path=ARTIFACTS / "job-history.png")

    # --- clone it from its page -----------------------------------------------------------
    page.click("#clone-job-link")
    expect(page.locator("#id_name")).to_have_value("copy of nightly-report")
    expect(page.locator("#clone-disabled-note")).to_contain_text("paused")
    page.fill("#id_name", "nightly-report-v2")
    page.screenshot(path=ARTIFACTS / "job-clone.png", full_page=True)
    page.click("input[name=_clone]")
    expect(page.locator(".messagelist")).to_contain_text("cloned as 'nightly-report-v2'")
    clone = BatchJob.objects.get(name="nightly-report-v2")
    expect(page).to_have_url(f"{base}/admin/batchjobs/batchjob/{clone.pk}/change/")
    expect(page.locator("#id_name")).to_have_value("nightly-report-v2")
    assert clone.enabled is False
    assert list(clone.schedules.values_list("paused", flat=True)) == [True]
    assert sorted(clone.tags.values_list("name", flat=True)) == ["reports", "team-a"]
    page.screenshot(path=ARTIFACTS / "job-cloned.png", full_page=True)

    # --- import: a file with a changed job and a new one; the dry run, then confirm ---------
    document = definitions_export(names=["nightly-report"], include_limits=False)
    document["jobs"][0]["timeout_seconds"] = 42
    document["jobs"].append({**document["jobs"][0], "name": "imported-report", "schedules": []})
    page.goto(f"{base}/admin/batchjobs/batchjob/")
    page.click("#import-jobs-link")
    page.set_input_files(
        "#id_file",
        files=[{"name": "jobs.yaml", "mimeType": "application/yaml",
                "buffer": document_dump(document, "yaml").encode()}],
    )  # fmt: skip
    page.click("#import_form input[type=submit]")
    expect(page.locator("#import-jobs tr.import-updated")).to_contain_text("timeout_seconds")
    expect(page.locator("#import-jobs tr.import-created")).to_contain_text("imported-report")
    page.screenshot(path=ARTIFACTS / "job-import-dry-run.png", full_page=True)
    assert not BatchJob.objects.filter(name="imported-report").exists()
    page.click("#import_confirm_form input[name=confirm]")
    expect(page.locator(".messagelist")).to_contain_text("1 created, 1 updated")
    assert BatchJob.objects.get(name="nightly-report").timeout_seconds == 42

    # --- the same pages on a phone -------------------------------------------------------
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/admin/batchjobs/batchjob/?tags__name=team-a")
    expect(rows).to_have_count(3)  # the copy and the imported job carry the tag too
    page.screenshot(path=ARTIFACTS / "jobs-filtered-by-tag-390.png", full_page=True)
    page.goto(f"{base}/admin/batchjobs/batchjob/{report.pk}/change/")
    expect(history).to_be_visible()
    width = page.evaluate("document.getElementById('job-history').getBoundingClientRect().width")
    assert width <= 390
    history.screenshot(path=ARTIFACTS / "job-history-390.png")

    assert errors == []
