"""The execution page in Debian's Chromium (Playwright) against a live server and a real worker:
a failed run's error is readable without scrolling at 1400x900 and at 390 px (a long one cut
short), and a running run's header, breadcrumb, buttons, steps, progress and log lines update
without a reload until it ends. Screenshots go to
test-artifacts/; any console error or failed request fails the test."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from batchjobs.models import (
    AttemptLogLine,
    BatchAttempt,
    BatchLog,
    ExecutionStatus,
    JobKind,
    StepExecution,
)
from batchjobs.selectors.executions import ERROR_LINE_MAX_CHARS
from batchjobs.services import operator
from batchjobs.services.jobs import job_create
from tests.support.browser import (
    ARTIFACTS,
    DESKTOP,
    PASSWORD,
    PHONE,
    log_in,
    new_page,
    watch_for_problems,
)
from tests.support.factories import handler_job, start
from tests.support.processes import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_page(browser: Browser) -> Iterator[Page]:
    """A page at 1400x900 that records console errors, uncaught exceptions and failed
    responses (4xx/5xx) in page.problems."""
    page = new_page(browser, DESKTOP, sidebar_closed=True)
    page.problems = watch_for_problems(page, from_status=400)  # type: ignore[attr-defined]
    yield page
    page.context.close()


def status_of(execution_id: int) -> str:
    return BatchLog.objects.filter(pk=execution_id).values_list("status", flat=True).first()


def test_the_execution_page_in_a_real_browser(
    worker, beat, live_server, browser_page, django_user_model
):
    page, base = browser_page, live_server.url
    django_user_model.objects.create_superuser("operator", "ops@example.com", PASSWORD)
    log_in(page, base)

    # --- a run that failed twice, 2 s apart: why, without scrolling ---------------------------
    failing = handler_job(
        "fail", params={"message": "warehouse down"}, max_attempts=2, retry_backoff_seconds=2
    )
    failed = start(failing)
    # and one whose error is a single word of 1,000 characters
    endless = start(handler_job("fail", params={"message": "W" * 1000}, max_attempts=1))
    wait_until(lambda: status_of(failed.pk) == ExecutionStatus.FAILED, timeout=60)
    page.goto(f"{base}/admin/batchjobs/batchlog/{failed.pk}/change/")
    error = page.locator("#bj-header .bj-error-line")
    expect(error).to_have_text("RuntimeError: warehouse down")
    box = error.bounding_box()
    assert box is not None and box["y"] + box["height"] < DESKTOP["height"], box
    expect(page.locator("#bj-header .field-status_badge")).to_contain_text("FAILED")
    expect(page.locator("#bj-header .bj-fact-attempt dd")).to_have_text("2 of 2")
    expect(page.locator("#bj-header .bj-fact-next_retry")).to_have_count(0)
    expect(page.locator(".bj-attempt")).to_have_count(2)
    gap = page.locator("#attempt-2 .bj-gap").inner_text()
    assert gap.endswith(" s") and float(gap.split()[0]) >= 1.5, gap  # the backoff shows
    expect(page.locator("button.bj-operation:has-text('Restart')")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "execution-failed-1400.png")

    page.set_viewport_size(PHONE)
    page.reload()
    box = error.bounding_box()
    assert box is not None and box["y"] + box["height"] < PHONE["height"], box
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide at 390 px"
    page.screenshot(path=ARTIFACTS / "execution-failed-390.png")
    wait_until(lambda: status_of(endless.pk) == ExecutionStatus.FAILED, timeout=60)
    page.goto(f"{base}/admin/batchjobs/batchlog/{endless.pk}/change/")
    assert len(error.inner_text()) == ERROR_LINE_MAX_CHARS
    height = error.evaluate(
        "e => e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).lineHeight)"
    )
    assert height <= 3.05, f"the one-line error takes {height:.1f} lines at 390 px"
    page.click("#bj-header .bj-error-details summary")
    expect(page.locator("#bj-header .bj-error-details pre")).to_contain_text("W" * 1000)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=ARTIFACTS / "execution-long-error-390.png")
    page.set_viewport_size(DESKTOP)

    # --- a running run: the header, progress and log lines follow it live --------------------
    running = start(handler_job("sleep", params={"seconds": 12}))
    wait_until(lambda: BatchAttempt.objects.filter(execution=running).exists(), timeout=60)
    page.goto(f"{base}/admin/batchjobs/batchlog/{running.pk}/change/")
    page.evaluate("window.notReloaded = true")
    badge, crumb = page.locator("#bj-header .field-status_badge"), page.locator("#bj-crumb-status")
    buttons = page.locator("button.bj-operation")
    expect(badge).to_contain_text("STARTED")
    expect(crumb).to_have_text("STARTED")
    expect(buttons).to_have_text(["Stop"])
    expect(page.locator("#bj-header .field-progress progress")).to_have_count(1)
    attempt = BatchAttempt.objects.get(execution=running)
    # Lines as the attempt's log capture writes them while it runs (numbered past any it
    # writes itself), after the page was loaded.
    AttemptLogLine.objects.bulk_create(
        AttemptLogLine(attempt=attempt, number=10_000 + n, logged_at=attempt.started_at,
                       level=20, logger="tests.live", message=f"live line {n}")
        for n in (1, 2, 3)
    )  # fmt: skip
    lines = page.locator("#attempt-1 .bj-log-message")
    expect(lines.filter(has_text="live line 3")).to_have_count(1, timeout=10_000)
    page.screenshot(path=ARTIFACTS / "execution-running.png", full_page=True)
    wait_until(lambda: status_of(running.pk) == ExecutionStatus.COMPLETED, timeout=60)
    expect(badge).to_contain_text("COMPLETED")
    expect(page.locator("#bj-live-state")).to_contain_text("has ended")
    expect(crumb).to_have_text("COMPLETED")
    expect(buttons).to_have_count(0)  # nothing to stop any more
    assert page.evaluate("window.notReloaded") is True
    assert lines.filter(has_text="live line").count() == 3  # appended once each
    page.screenshot(path=ARTIFACTS / "execution-completed.png", full_page=True)

    # --- a batch job stopped elsewhere while its page is open: its steps' counters, the ------
    # breadcrumb and the buttons follow without a reload, and Restart works from the page
    numbers = job_create(
        name="numbers-live", kind=JobKind.BATCH, batch_job_name="tests.numbers", max_attempts=1,
        params={"count": 600, "delay": 0.02},
    )  # fmt: skip
    batch_run = start(numbers, run=1)
    loading = StepExecution.objects.filter(execution=batch_run, read_count__gt=0)
    wait_until(loading.exists, timeout=60)
    page.goto(f"{base}/admin/batchjobs/batchlog/{batch_run.pk}/change/")
    page.evaluate("window.notReloaded = true")
    expect(crumb).to_have_text("STARTED")
    expect(buttons).to_have_text(["Stop"])
    read = page.locator("#bj-steps tr.bj-step", has_text="load").locator(".bj-step-read")
    expect(read).to_have_count(1)
    expect(read).not_to_have_text(read.inner_text(), timeout=10_000)  # counting, live
    operator.execution_stop(execution_id=batch_run.pk)  # as another operator or the CLI would
    expect(badge).to_contain_text("STOPPED", timeout=30_000)
    expect(crumb).to_have_text("STOPPED")
    expect(buttons).to_have_text(["Restart", "Abandon"])
    stopped_at = StepExecution.objects.get(execution=batch_run, step_name="load").read_count
    expect(read).to_have_text(str(stopped_at))  # the final count, not the last one polled
    assert page.evaluate("window.notReloaded") is True
    page.screenshot(path=ARTIFACTS / "execution-batch-stopped.png", full_page=True)
    page.click("button.bj-operation:has-text('Restart')")  # its token came with the update
    expect(page.locator(".messagelist")).to_contain_text(f"Execution #{batch_run.pk} restarted as")
    expect(badge).to_contain_text("COMPLETED", timeout=60_000)
    expect(crumb).to_have_text("COMPLETED")
    expect(buttons).to_have_count(0)
    page.set_viewport_size(PHONE)  # the steps table scrolls inside its box
    expect(page.locator("#bj-steps tr.bj-step")).to_have_count(2)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the batch run's page is {width} px wide at 390 px"
    page.screenshot(path=ARTIFACTS / "execution-batch-390.png", full_page=True)
    page.set_viewport_size(DESKTOP)

    # --- the list: every column in view at 1400 px; at 390 px the table scrolls in its box ---
    page.goto(f"{base}/admin/batchjobs/batchlog/?q=warehouse")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)  # searched in error text
    page.goto(f"{base}/admin/batchjobs/batchlog/")
    headers = page.locator("#result_list thead th")
    expect(headers.last).to_contain_text("Created")
    for header in headers.all():
        box = header.bounding_box()
        assert box is not None and box["x"] + box["width"] <= DESKTOP["width"], header.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
    page.screenshot(path=ARTIFACTS / "executions-1400.png")
    page.set_viewport_size(PHONE)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the list is {width} px wide at 390 px"
    page.screenshot(path=ARTIFACTS / "executions-390.png", full_page=True)

    assert page.problems == []  # type: ignore[attr-defined]
