"""Schedules in a real browser (Debian's Chromium, Playwright): in the job form, a schedule
row shows only the fields of its kind; a cron typed in it and a zone picked from the searchable
picker ("Asia/Seul" offers Asia/Seoul) preview 02:00 KST fires inline; one save registers the
job; switched to every 5 minutes, the preview follows. The page fits 1400 px and 390 px wide.
The schedule page hides the other kinds' fields too. Screenshots go to test-artifacts/; any
console error or server error fails the test."""

import re

import pytest
from playwright.sync_api import Page, expect

from batchjobs.models import BatchJob
from tests.support.browser import ARTIFACTS

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

KIND_ROWS = {
    "once": ".form-row.field-run_at",
    "delay": ".form-row.field-delay",
    "interval": ".form-row.field-interval_every",
    "cron": ".form-row.field-cron_expression",
}


def expect_only_kind_rows(scope, kind: str) -> None:
    for other, row in KIND_ROWS.items():
        locator = scope.locator(row)
        if other == kind:
            expect(locator).to_be_visible()
        else:
            expect(locator).to_be_hidden()


def page_width(page: Page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_a_schedule_row_is_typed_with_its_kind_a_zone_picked_and_its_fires_previewed(logged_in):
    page, base = logged_in

    # --- an HTTP job with retries and a schedule row ------------------------------------------
    page.goto(f"{base}/admin/batchjobs/batchjob/add/")
    page.fill("#id_name", "seoul-nightly")
    page.select_option("#id_kind", "http")
    page.fill("#id_http_url", f"{base}/demo/ping")
    page.fill("#id_max_attempts", "4")
    page.click("#schedules-group .add-row a")
    row = page.locator("#schedules-0")
    page.select_option("[name=schedules-0-kind]", "cron")
    expect_only_kind_rows(row, "cron")
    page.fill("[name=schedules-0-cron_expression]", "0 2 * * *")

    # --- the zone from the searchable picker: the typo finds Asia/Seoul ---------------------
    zone = page.locator("[name=schedules-0-timezone]")
    zone.fill("")
    zone.press_sequentially("Asia/Seul")
    suggestion = row.locator(".bj-zone-list li").first
    expect(suggestion).to_contain_text("Asia/Seoul")
    page.screenshot(path=ARTIFACTS / "schedule-row-zone-picker.png", full_page=True)
    suggestion.click()
    expect(zone).to_have_value("Asia/Seoul")
    expect(row.locator(".bj-zone-list")).to_be_hidden()

    # --- the inline preview: 02:00 KST, and the operator's reading beside it ----------------
    fires = row.locator(".bj-preview-fires li")
    expect(fires).to_have_count(10)
    expect(row.locator(".bj-schedule-preview strong")).to_have_text("At 02:00 AM")
    for text in fires.all_inner_texts():
        assert re.match(r"\d{4}-\d\d-\d\d 02:00:00 KST \(\d{4}-\d\d-\d\d 17:00:00 UTC\)", text)
    assert page_width(page) <= 1400
    page.screenshot(path=ARTIFACTS / "schedule-row-cron-seoul.png", full_page=True)

    # --- one save: the job, its retries and its schedule ------------------------------------
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    job = BatchJob.objects.get(name="seoul-nightly")
    schedule = job.schedules.get()
    assert job.max_attempts == 4
    assert (schedule.kind, schedule.cron_expression, schedule.timezone) == (
        "cron", "0 2 * * *", "Asia/Seoul")  # fmt: skip

    # --- switched to every 5 minutes: the cron goes, the preview follows --------------------
    row = page.locator("#schedules-0")
    expect_only_kind_rows(row, "cron")  # a saved row opens with its own kind's fields
    page.select_option("[name=schedules-0-kind]", "interval")
    expect_only_kind_rows(row, "interval")
    page.fill("[name=schedules-0-interval_every]", "5")
    expect(row.locator(".bj-schedule-preview strong")).to_have_text("every 5 minutes")
    expect(row.locator(".bj-preview-fires li").nth(1)).to_contain_text("in 5 min")
    page.screenshot(path=ARTIFACTS / "schedule-row-every-5-minutes.png", full_page=True)
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    schedule.refresh_from_db()
    assert (schedule.kind, schedule.interval_every, schedule.cron_expression) == (
        "interval", 5, "")  # fmt: skip

    # --- 390 px wide: nothing runs off the side --------------------------------------------
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.locator("#schedules-0 .bj-preview-fires li")).to_have_count(10)
    assert page_width(page) <= 390
    page.screenshot(path=ARTIFACTS / "schedule-row-390.png", full_page=True)

    # --- the schedule page: other kinds' fields hidden, any kind previewed ------------------
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{base}/admin/batchjobs/batchschedule/{schedule.pk}/change/")
    form = page.locator("#batchschedule_form")
    expect_only_kind_rows(form, "interval")
    expect(page.locator("#schedule-preview-fires li")).to_have_count(10)
    page.select_option("#id_kind", "cron")
    expect_only_kind_rows(form, "cron")
    page.fill("#id_cron_expression", "61 * * * *")
    expect(page.locator("#schedule-preview .errornote")).to_have_text(
        "Cron expression: minute field: 61 is out of range 0–59."
    )
    page.select_option("#id_kind", "delay")
    expect_only_kind_rows(form, "delay")  # the bad cron is not left showing
    page.fill("#id_delay", "90")
    expect(page.locator("#schedule-preview-fires li")).to_have_count(1)
    expect(page.locator("#schedule-preview-fires li")).to_contain_text("in 1 min")
    assert page_width(page) <= 1400
    page.screenshot(path=ARTIFACTS / "schedule-page-after-a-delay.png", full_page=True)

    # --- the picker by keyboard, at 390 px: a city's name, Enter --------------------------
    page.set_viewport_size({"width": 390, "height": 844})
    page.select_option("#id_kind", "cron")
    page.fill("#id_cron_expression", "0 2 * * *")
    zone = page.locator("#id_timezone")
    zone.fill("")
    zone.press_sequentially("kolkatta")
    expect(page.locator(".bj-zone-list li").first).to_contain_text("Asia/Kolkata")
    zone.press("Enter")  # picks the first suggestion, does not send the form
    expect(zone).to_have_value("Asia/Kolkata")
    expect(page.locator("#schedule-preview-fires li").first).to_contain_text(" 02:00:00 IST")
    assert page_width(page) <= 390
    page.screenshot(path=ARTIFACTS / "schedule-page-390.png", full_page=True)
