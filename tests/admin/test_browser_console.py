"""The console's frame in Debian's Chromium (Playwright): the home is the dashboard with the
status card, the menu leads with the product and ends with the Celery internals folded, no
page is wider than a 390 px phone, the icon is served, and no page logs a console error.
Screenshots go to test-artifacts/console-*.png."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, ViewportSize, expect

from batchjobs.models import BatchLog, ExecutionStatus, Trigger
from batchjobs.services.schedules import schedule_create
from tests.support.browser import ARTIFACTS, PASSWORD, log_in, new_page, watch_for_problems
from tests.support.factories import handler_job

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PAGES = {"home": "/admin/", "upcoming": "/admin/batchjobs/upcoming/?window=7d"}
WIDTHS = (390, 1400)
PRODUCT_FIRST = ["Dashboard", "Jobs", "Schedules", "Executions", "Upcoming runs"]


def watched_page(browser: Browser, width: int, problems: list[str]) -> Page:
    """A page at `width` px whose console errors, script errors and answers >= 400 go to
    `problems`."""
    page = new_page(browser, ViewportSize(width=width, height=900))
    watch_for_problems(page, from_status=400, problems=problems)
    return page


def seed_console() -> None:
    """Something on every part of the home and the timeline: a failure, completed runs of
    two jobs (the run-time chart), a job with a long name, schedules firing over the week."""
    now = timezone.now()
    long_name = handler_job("noop", name="warehouse-nightly-reconciliation-of-every-ledger")
    quick = handler_job("noop", name="ping")
    for job, seconds in ((long_name, 340.0), (quick, 0.4)):
        for minutes_ago in (5, 65, 125):
            started = now - timedelta(minutes=minutes_ago)
            BatchLog.objects.create(
                job=job, trigger=Trigger.SCHEDULE, status=ExecutionStatus.COMPLETED,
                attempts=1, max_attempts=3, started_at=started,
                finished_at=started + timedelta(seconds=seconds),
            )  # fmt: skip
    BatchLog.objects.create(
        job=quick, trigger=Trigger.SCHEDULE, status=ExecutionStatus.FAILED, attempts=3,
        max_attempts=3, started_at=now, finished_at=now,
        error="ConnectionError: " + "a very long error message without spaces_" * 6,
    )  # fmt: skip
    schedule_create(job=long_name, kind="cron", cron_expression="30 2 * * *", timezone="Asia/Seoul")
    schedule_create(job=quick, kind="interval", interval_every=3, interval_unit="hours")


def page_width(page: Page) -> int:
    return page.evaluate("document.scrollingElement.scrollWidth")


def test_the_console_frame_in_a_browser(live_server, browser, django_user_model):
    base = live_server.url
    django_user_model.objects.create_superuser("operator", "ops@example.com", PASSWORD)
    seed_console()
    problems: list[str] = []

    # --- at 1400 px: the home is the dashboard, the menu the product's ---------------------
    page = watched_page(browser, 1400, problems)
    log_in(page, base)
    assert page.url == f"{base}/admin/"
    expect(page.locator("#status-card")).to_contain_text("Next to fire:")
    expect(page.locator("#dashboard-live #failures")).to_contain_text("ConnectionError")
    sidebar = page.locator("#nav-sidebar")
    expect(sidebar).to_be_visible()
    first_group = sidebar.locator(".module").first.locator("th[scope=row]")
    assert first_group.all_inner_texts()[: len(PRODUCT_FIRST)] == PRODUCT_FIRST
    expect(sidebar.locator("tr.current-model")).to_have_text("Dashboard")
    internals = sidebar.locator("details.bj-internals")
    expect(internals).to_have_count(1)
    assert internals.evaluate("d => d.open") is False
    assert internals.evaluate("d => d === d.parentElement.lastElementChild")
    expect(internals.locator("a", has_text="Periodic tasks")).to_be_hidden()
    internals.locator("summary").click()
    expect(internals.locator("a", has_text="Periodic tasks")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "console-home-1400.png", full_page=True)

    # the executions' list marks Executions, and the dashboard's old address the dashboard
    page.goto(f"{base}/admin/batchjobs/batchlog/dashboard/")
    expect(sidebar.locator("tr.current-model")).to_have_text("Dashboard")
    expect(page.locator("#status-card")).to_be_visible()

    # the icon: linked from every page and at /favicon.ico
    icon = page.request.get(f"{base}/favicon.ico")
    assert icon.ok and icon.headers["content-type"].startswith("image/svg")

    # --- every page at a phone's width and a desktop's: nothing wider than the window ------
    for width in WIDTHS:
        sized = watched_page(browser, width, problems)
        log_in(sized, base)
        for name, path in PAGES.items():
            sized.goto(f"{base}{path}")
            expect(sized.locator("#content")).to_be_visible()
            sized.screenshot(path=ARTIFACTS / f"console-{name}-{width}.png", full_page=True)
            assert page_width(sized) <= width, (name, width, page_width(sized))
        sized.context.close()

    # the timeline: a strip per job, marks on them, the fires listed by day
    page.goto(f"{base}{PAGES['upcoming']}")
    expect(page.locator("#upcoming-timeline tbody tr")).to_have_count(2)
    assert page.locator(".bj-strip .bj-fire").count() >= 7 * 8
    expect(page.locator(".bj-upcoming-day").first).to_be_visible()
    # the menu on a phone: the home lists it (the sidebar is hidden below 768 px)
    phone = watched_page(browser, 390, problems)
    log_in(phone, base)
    expect(phone.locator("#nav-sidebar")).to_be_hidden()
    expect(phone.locator("#home-menu")).to_be_visible()
    expect(phone.locator("#home-menu a", has_text="Upcoming runs")).to_be_visible()

    assert problems == []
