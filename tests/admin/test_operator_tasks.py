"""The operator's tasks of issue #16, walked in Debian's Chromium (Playwright) as a new operator
would, through clicks and typing only, against a live server with a real worker and beat:
register an HTTP job that runs daily at 02:00 Asia/Seoul with retries (one form, one save),
switch it to every 5 minutes, run it now, clone it, find why a failed run failed (at most 2
clicks from the dashboard, the error in view without scrolling), watch a batch job's progress,
stop and restart it, tag two jobs and filter by the tag. Then the main pages at a phone's and a
desktop's width: none wider than the window. Screenshots go to test-artifacts/operator-*.png;
any console error, script error or server error (5xx) fails the test."""

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, ViewportSize, expect

from batchjobs.models import BatchJob, BatchLog, ExecutionStatus, Trigger
from batchjobs.services.jobs import job_tags_set
from batchjobs.services.schedules import schedule_create
from batchjobs_examples.models import ExampleCustomer
from tests.support.browser import (
    ARTIFACTS,
    DESKTOP,
    PASSWORD,
    PHONE,
    log_in,
    new_page,
    watch_for_problems,
)
from tests.support.factories import handler_job, http_job
from tests.support.processes import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

EXECUTION_PAGE = re.compile(r"/admin/batchjobs/batchlog/(\d+)/change/$")


class WatchedPage:
    """A page in a context of its own, recording every console error, script error and server
    error (5xx) it sees in `problems`; the navigation sidebar as a first visit has it."""

    def __init__(self, browser: Browser, viewport: ViewportSize):
        self.page = new_page(browser, viewport)
        self.context = self.page.context
        self.problems = watch_for_problems(self.page)


@pytest.fixture
def operator_page(browser: Browser) -> Iterator[WatchedPage]:
    watched = WatchedPage(browser, DESKTOP)
    yield watched
    watched.context.close()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=ARTIFACTS / f"operator-{name}.png", full_page=True)


def status_of(execution_id: int) -> str | None:
    return BatchLog.objects.filter(pk=execution_id).values_list("status", flat=True).first()


def in_view(page: Page, selector: str) -> bool:
    """The element's box lies inside the window as the page opened (no scrolling)."""
    box = page.locator(selector).bounding_box()
    size = page.viewport_size
    return (
        box is not None
        and size is not None
        and box["y"] >= 0
        and box["y"] + box["height"] <= size["height"]
        and box["x"] + box["width"] <= size["width"]
    )


def open_jobs_list(page: Page) -> None:
    page.locator("#nav-sidebar a", has_text="Jobs").first.click()
    expect(page.locator("#result_list, #changelist")).not_to_have_count(0)


def add_job(page: Page) -> None:
    open_jobs_list(page)
    page.click(".object-tools a.addlink")
    expect(page.locator("#batchjob_form")).to_be_visible()


def run_now(page: Page, params: str | None = None) -> int:
    """From the job's page: Run now…, the run form (its parameters typed), Run now; lands on
    the new execution's page, whose id is returned."""
    page.click(".object-tools a:has-text('Run now…')")
    if params is not None:
        page.fill("#run_form #id_params", params)
    page.click("#run_form input[type=submit]")
    expect(page.locator(".messagelist")).to_contain_text("Queued execution")
    expect(page).to_have_url(EXECUTION_PAGE)
    match = EXECUTION_PAGE.search(page.url)
    assert match is not None
    return int(match.group(1))


def test_the_operators_tasks_in_a_real_browser(
    worker, beat, live_server, operator_page, django_user_model, httpserver
):
    page, base = operator_page.page, live_server.url
    django_user_model.objects.create_superuser("operator", "ops@example.com", PASSWORD)
    # The endpoint of the job that fails: a server error every time.
    httpserver.expect_request("/warehouse/export").respond_with_data("warehouse down", status=500)

    # --- log in: the home is the dashboard -------------------------------------------------
    log_in(page, base)
    assert page.url == f"{base}/admin/"
    expect(page.locator("#status-card")).to_be_visible()
    expect(page.locator("#nav-sidebar")).to_be_visible()
    shot(page, "01-home")

    # --- Jobs → Add: an HTTP job, daily at 02:00 Asia/Seoul, with retries: one save --------
    add_job(page)
    page.fill("#id_name", "seoul-ping")
    page.select_option("#id_kind", "http")
    page.select_option("#id_http_method", "POST")
    page.fill("#id_http_url", f"{base}/demo/ping")
    page.fill("#id_max_attempts", "3")
    page.fill("#id_retry_backoff_seconds", "30")
    page.click("#schedules-group .add-row a")
    row = page.locator("#schedules-0")
    page.select_option("[name=schedules-0-kind]", "cron")
    page.fill("[name=schedules-0-cron_expression]", "0 2 * * *")
    zone = page.locator("[name=schedules-0-timezone]")
    zone.fill("")
    zone.press_sequentially("Seoul")
    suggestion = row.locator(".bj-zone-list li", has_text="Asia/Seoul").first
    expect(suggestion).to_be_visible()
    suggestion.click()
    expect(zone).to_have_value("Asia/Seoul")
    fires = row.locator(".bj-preview-fires li")
    expect(fires).to_have_count(10)
    expect(fires.first).to_contain_text("02:00:00 KST")
    assert all(" 02:00:00 KST " in text for text in fires.all_inner_texts())
    shot(page, "02-job-form-seoul")
    page.click("input[name=_continue]")  # the one save
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    job = BatchJob.objects.get(name="seoul-ping")
    schedule = job.schedules.get()
    assert (job.kind, job.http_method, job.max_attempts, job.retry_backoff_seconds) == (
        "http", "POST", 3, 30)  # fmt: skip
    assert (schedule.kind, schedule.cron_expression, schedule.timezone) == (
        "cron", "0 2 * * *", "Asia/Seoul")  # fmt: skip

    # --- switched to every 5 minutes, in the same row: the preview follows ----------------
    row = page.locator("#schedules-0")
    page.select_option("[name=schedules-0-kind]", "interval")
    page.fill("[name=schedules-0-interval_every]", "5")
    expect(row.locator(".bj-schedule-preview strong")).to_have_text("every 5 minutes")
    expect(row.locator(".bj-preview-fires li").nth(1)).to_contain_text("in 5 min")
    shot(page, "03-every-5-minutes")
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    schedule.refresh_from_db()
    assert (schedule.kind, schedule.interval_every, schedule.interval_unit) == (
        "interval", 5, "minutes")  # fmt: skip
    assert schedule.next_fire_at is not None
    assert schedule.next_fire_at - timezone.now() <= timedelta(minutes=5, seconds=1)

    # --- run it now from its page: it completes, seen on the execution page ----------------
    ping_run = run_now(page)
    assert BatchLog.objects.get(pk=ping_run).job_id == job.pk
    expect(page.locator("#bj-header .field-status_badge")).to_contain_text(
        "COMPLETED", timeout=30_000
    )
    shot(page, "04-run-now-completed")

    # --- cloned from its page: saved under a new name, disabled, its schedule paused -------
    page.goto(f"{base}/admin/batchjobs/batchjob/{job.pk}/change/")  # back to the job
    page.click("#clone-job-link")
    expect(page.locator("#clone-disabled-note")).to_contain_text("paused")
    page.fill("#id_name", "warehouse-export")
    page.click("input[name=_clone]")
    expect(page.locator(".messagelist")).to_contain_text("cloned as 'warehouse-export'")
    clone = BatchJob.objects.get(name="warehouse-export")
    assert clone.enabled is False
    assert list(clone.schedules.values_list("paused", flat=True)) == [True]
    shot(page, "05-cloned")

    # the copy pointed at an endpoint that fails, two attempts 1 s apart, enabled, run now
    page.fill("#id_http_url", httpserver.url_for("/warehouse/export"))
    page.fill("#id_max_attempts", "2")
    page.fill("#id_retry_backoff_seconds", "1")
    page.check("#id_enabled")
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    failing_run = run_now(page)
    wait_until(lambda: status_of(failing_run) == ExecutionStatus.FAILED, timeout=60)

    # --- why did it fail? from the dashboard, counted clicks, the error in view ------------
    page.goto(f"{base}/admin/")
    failure = page.locator("#failures tr", has_text="warehouse-export")
    expect(failure).to_be_visible()
    shot(page, "06-dashboard-failure")
    clicks = 0
    failure.locator(f"a[href$='/batchlog/{failing_run}/change/']").click()
    clicks += 1
    expect(page).to_have_url(f"{base}/admin/batchjobs/batchlog/{failing_run}/change/")
    error = page.locator("#bj-header .bj-error-line")
    expect(error).to_contain_text("500")
    assert page.evaluate("window.scrollY") == 0
    assert in_view(page, "#bj-header .bj-error-line"), error.bounding_box()
    expect(page.locator("#bj-header .bj-fact-attempt dd")).to_have_text("2 of 2")
    assert clicks <= 2
    print(f"clicks from the dashboard to the failed execution's error: {clicks}")
    page.screenshot(path=ARTIFACTS / "operator-07-why-it-failed.png")  # the view, unscrolled

    # --- a batch job: registered, run now with its parameters, watched live ----------------
    add_job(page)
    page.fill("#id_name", "numbers-load")
    page.select_option("#id_kind", "batch")
    page.select_option("#id_batch_job_name", "tests.numbers")
    page.fill("#batchjob_form #id_params", '{"count": 600, "delay": 0.02}')
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    batch_run = run_now(page, '{"run": 1}')
    page.evaluate("window.notReloaded = true")
    progress = page.locator("#bj-header .field-progress .bj-progress-text").first
    expect(progress).to_contain_text("items/s", timeout=30_000)
    first_reading = progress.inner_text()
    expect(progress).not_to_have_text(first_reading, timeout=10_000)  # moving, live
    expect(page.locator("#bj-header .field-progress progress").first).to_be_visible()
    assert page.evaluate("window.notReloaded") is True
    shot(page, "08-batch-progress")

    page.click("button.bj-operation:has-text('Stop')")
    expect(page.locator(".messagelist")).to_contain_text(f"Execution #{batch_run} asked to stop")
    page.evaluate("window.notReloaded = true")  # the stop's answer was a page of its own
    expect(page.locator("#bj-header .field-status_badge")).to_contain_text(
        "STOPPED", timeout=30_000
    )
    assert status_of(batch_run) == ExecutionStatus.STOPPED
    assert 0 < ExampleCustomer.objects.count() < 600  # stopped part way
    # The operator's buttons follow the run live: Restart shows and Stop goes, no reload.
    expect(page.locator("button.bj-operation:has-text('Stop')")).to_have_count(0)
    expect(page.locator("button.bj-operation:has-text('Restart')")).to_be_visible()
    assert page.evaluate("window.notReloaded") is True
    shot(page, "09-batch-stopped")

    page.click("button.bj-operation:has-text('Restart')")
    expect(page.locator(".messagelist")).to_contain_text(f"Execution #{batch_run} restarted as")
    restarted = BatchLog.objects.get(restart_of_id=batch_run)
    expect(page).to_have_url(f"{base}/admin/batchjobs/batchlog/{restarted.pk}/change/")
    expect(page.locator("#bj-header .field-status_badge")).to_contain_text(
        "COMPLETED", timeout=60_000
    )
    assert status_of(restarted.pk) == ExecutionStatus.COMPLETED
    assert ExampleCustomer.objects.count() == 600  # resumed: every number written once
    shot(page, "10-batch-restarted-completed")

    # --- two jobs tagged by a bulk action, the list filtered by the tag --------------------
    open_jobs_list(page)
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(3)
    for name in ("seoul-ping", "numbers-load"):
        rows.filter(has=page.locator(f"th a:text-is('{name}')")).locator(
            "input.action-select"
        ).check()
    page.select_option("select[name=action]", "add_tag")
    page.click("#changelist-form button[name=index]")
    page.fill("#id_tag", "nightly")
    page.click("#tag_jobs_form input[type=submit]")
    expect(page.locator(".messagelist")).to_contain_text("Tag 'nightly' added to 2 jobs.")
    page.locator("#changelist-filter a", has_text="nightly").click()
    expect(page).to_have_url(f"{base}/admin/batchjobs/batchjob/?tags__name=nightly")
    expect(rows).to_have_count(2)
    assert sorted(rows.locator("th a").all_inner_texts()) == ["numbers-load", "seoul-ping"]
    shot(page, "11-filtered-by-tag")
    assert sorted(BatchJob.objects.filter(tags__name="nightly").values_list("name", flat=True)) == [
        "numbers-load",
        "seoul-ping",
    ]

    assert operator_page.problems == []


# --- the main pages at a phone's and a desktop's width ----------------------------------------


def seed_pages(base: str) -> dict[str, str]:
    """A job of each kind with a schedule, tags and executions (a failed one with a long
    error, a running batch job with progress): every page has its wide things to show."""
    ping = http_job(
        f"{base}/demo/ping?report=nightly-customer-export&format=csv&region=eu-west-1",
        name="warehouse-nightly-reconciliation-of-every-ledger",
    )
    job_tags_set(job=ping, names=["nightly", "finance-and-accounting"])
    cron = schedule_create(
        job=ping, kind="cron", cron_expression="30 2 * * *", timezone="Asia/Seoul"
    )
    sleeper = handler_job("sleep", params={"seconds": 1}, name="sleep-a-second")
    schedule_create(job=sleeper, kind="interval", interval_every=3, interval_unit="hours")
    now = timezone.now()
    failed = BatchLog.objects.create(
        job=ping, trigger=Trigger.SCHEDULE, status=ExecutionStatus.FAILED, attempts=3,
        max_attempts=3, started_at=now - timedelta(seconds=5), finished_at=now,
        error="ConnectionError: " + "a very long error message without spaces_" * 6,
        worker="celery@a-rather-long-worker-host-name.example.internal",
    )  # fmt: skip
    for minutes_ago in (5, 65):
        started = now - timedelta(minutes=minutes_ago)
        BatchLog.objects.create(
            job=sleeper, trigger=Trigger.SCHEDULE, status=ExecutionStatus.COMPLETED,
            attempts=1, max_attempts=1, started_at=started,
            finished_at=started + timedelta(seconds=1),
        )  # fmt: skip
    return {
        "home": "/admin/",
        "jobs": "/admin/batchjobs/batchjob/",
        "job-add": "/admin/batchjobs/batchjob/add/",
        "job-change": f"/admin/batchjobs/batchjob/{ping.pk}/change/",
        "schedule": f"/admin/batchjobs/batchschedule/{cron.pk}/change/",
        "executions": "/admin/batchjobs/batchlog/",
        "execution": f"/admin/batchjobs/batchlog/{failed.pk}/change/",
        "upcoming": "/admin/batchjobs/upcoming/?window=7d",
    }


def test_no_main_page_is_wider_than_the_window(live_server, browser, django_user_model):
    base = live_server.url
    django_user_model.objects.create_superuser("operator", "ops@example.com", PASSWORD)
    pages = seed_pages(base)
    overflowing: dict[str, int] = {}
    problems: list[str] = []
    for viewport in (PHONE, DESKTOP):
        width = viewport["width"]
        watched = WatchedPage(browser, viewport)
        page = watched.page
        log_in(page, base)
        for name, path in pages.items():
            page.goto(f"{base}{path}")
            expect(page.locator("#content")).to_be_visible()
            page.wait_for_load_state("load")
            scroll_width = page.evaluate("document.scrollingElement.scrollWidth")
            if scroll_width > page.evaluate("window.innerWidth") + 1:
                overflowing[f"{name} at {width}"] = scroll_width
            page.screenshot(path=ARTIFACTS / f"operator-layout-{name}-{width}.png", full_page=True)
        problems += watched.problems
        watched.context.close()
    assert overflowing == {}, overflowing
    assert problems == []
