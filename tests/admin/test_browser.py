"""The admin as a person uses it, in Debian's Chromium driven by Playwright, against a live
server with a real worker and beat: log in, create an HTTP job with a cron schedule in a
non-UTC zone and see its preview, run it now and watch it finish on the dashboard, stop a
running batch job, restart it, and read the audit trail. Screenshots go to test-artifacts/.

Needs /usr/bin/chromium and the playwright package, as tests/support/browser.py says."""

import re

import pytest
from playwright.sync_api import expect

from batchjobs.models import AuditAction, AuditEntry, BatchJob, BatchLog, ExecutionStatus
from batchjobs.services import operator
from tests.support.browser import ARTIFACTS, PASSWORD, log_in
from tests.support.processes import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def execution_status(execution_id: int) -> str:
    return BatchLog.objects.filter(pk=execution_id).values_list("status", flat=True).first()


def test_an_operator_in_a_real_browser(worker, beat, live_server, browser_page, django_user_model):
    page, base = browser_page, live_server.url
    django_user_model.objects.create_superuser("operator", "ops@example.com", PASSWORD)

    # --- log in --------------------------------------------------------------------------
    log_in(page, base)
    expect(page.locator("#status-card")).to_be_visible()  # the home is the dashboard

    # --- an HTTP job with a cron schedule in Europe/Berlin ----------------------------------
    page.goto(f"{base}/admin/batchjobs/batchjob/add/")
    page.fill("#id_name", "browser-ping")
    page.select_option("#id_kind", "http")
    expect(page.locator("fieldset.kind-http")).to_be_visible()
    page.fill("#id_http_url", f"{base}/demo/ping")
    page.click("#schedules-group .add-row a")
    page.select_option("[name=schedules-0-kind]", "cron")
    page.fill("[name=schedules-0-cron_expression]", "30 2 * * *")
    page.fill("[name=schedules-0-timezone]", "Europe/Berlin")
    page.screenshot(path=ARTIFACTS / "job-form.png", full_page=True)
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    job = BatchJob.objects.get(name="browser-ping")
    schedule = job.schedules.get()

    # --- its preview: the next 10 fires at 02:30 Berlin time -------------------------------
    page.click(f"a[href$='/batchschedule/{schedule.pk}/change/']")
    fires = page.locator(".field-upcoming_fires li")
    expect(fires).to_have_count(10)
    for text in fires.all_inner_texts():
        assert re.match(r"\d{4}-\d\d-\d\d 02:30:00 CES?T \(\d{4}-\d\d-\d\d 0[01]:30:00 UTC\)", text)
    # the live preview, as the expression is typed (nothing saved)
    expect(page.locator("#schedule-preview")).to_contain_text("At 02:30 AM")
    expect(page.locator("#schedule-preview-fires li")).to_have_count(10)
    page.fill("#id_cron_expression", "0 */6 * * *")
    expect(page.locator("#schedule-preview")).to_contain_text("Every 6 hours")
    expect(page.locator("#schedule-preview-fires li").first).to_contain_text(":00:00 CE")
    page.screenshot(path=ARTIFACTS / "schedule-preview.png", full_page=True)
    page.fill("#id_cron_expression", "61 * * * *")
    expect(page.locator("#schedule-preview .errornote")).to_contain_text(
        "minute field: 61 is out of range 0–59"
    )

    # --- the dashboard is open while the job is run now, in another tab --------------------
    dashboard = page.context.new_page()
    dashboard.goto(f"{base}/admin/batchjobs/batchlog/dashboard/?refresh=2")
    completed = dashboard.locator("#counts-recent div", has_text="COMPLETED")
    expect(completed).to_contain_text("0")
    dashboard.evaluate("window.notReloaded = true")

    page.goto(f"{base}/admin/batchjobs/batchjob/{job.pk}/change/")
    page.click("text=Run now…")
    page.click("input[value='Run now']")
    expect(page.locator(".messagelist")).to_contain_text("Queued execution")
    run_now = BatchLog.objects.get(job=job)

    # the dashboard shows it finished, without a reload
    expect(completed).to_contain_text("1", timeout=30_000)
    assert dashboard.evaluate("window.notReloaded") is True
    assert execution_status(run_now.pk) == ExecutionStatus.COMPLETED

    # --- a running batch job, watched on the dashboard, then stopped -----------------------
    batch = operator.job_start(
        job_name="tests.numbers", params={"run": 71, "count": 500, "delay": 0.02}
    )
    running_row = dashboard.locator(f"#running tr[data-execution='{batch.pk}']")
    expect(running_row).to_be_visible(timeout=30_000)
    expect(running_row.locator(".bj-progress-text")).to_contain_text("items/s", timeout=30_000)
    dashboard.screenshot(path=ARTIFACTS / "dashboard.png", full_page=True)

    page.goto(f"{base}/admin/batchjobs/batchlog/{batch.pk}/change/")
    expect(page.locator(".field-progress progress")).to_have_count(1)
    page.click("button.bj-operation:has-text('Stop')")
    expect(page.locator(".messagelist")).to_contain_text(f"Execution #{batch.pk} asked to stop")
    wait_until(lambda: execution_status(batch.pk) == ExecutionStatus.STOPPED, timeout=30)
    page.reload()
    expect(page.locator(".field-status_badge")).to_contain_text("STOPPED")
    load = page.locator(".bj-step-name", has_text="load")
    expect(load).to_have_count(1)  # the steps table, with the step that was stopped
    page.screenshot(path=ARTIFACTS / "execution-stopped.png", full_page=True)

    # --- restarted from the same page: it resumes and completes ----------------------------
    page.click("button.bj-operation:has-text('Restart')")
    expect(page.locator(".messagelist")).to_contain_text(f"Execution #{batch.pk} restarted as")
    restarted = BatchLog.objects.get(restart_of_id=batch.pk)
    assert page.url.endswith(f"/batchlog/{restarted.pk}/change/")
    wait_until(lambda: execution_status(restarted.pk) == ExecutionStatus.COMPLETED, timeout=60)
    page.reload()
    expect(page.locator(".field-status_badge")).to_contain_text("COMPLETED")

    # --- the audit trail of the batch job says who did what --------------------------------
    page.goto(f"{base}/admin/batchjobs/batchjob/{restarted.job_id}/change/")
    page.click("text=Audit trail")
    rows = page.locator("#result_list tbody tr")
    expect(rows.first).to_be_visible()
    trail = [" ".join(text.split()).lower() for text in rows.all_inner_texts()]
    assert any("operator restarted" in row for row in trail), trail
    assert any("operator stopped" in row and f"#{batch.pk}" in row for row in trail), trail
    assert any("system started" in row for row in trail), trail
    page.screenshot(path=ARTIFACTS / "audit-trail.png", full_page=True)
    assert AuditEntry.objects.filter(
        actor_name="operator", action=AuditAction.CREATED, job=job
    ).exists()
