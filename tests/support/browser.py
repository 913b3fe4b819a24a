"""Debian's Chromium driven by Playwright, for the admin's browser tests: the launch, a page in
a context of its own, the operator's log-in, and a collector of what must not happen on a page
(console errors, uncaught script errors, server errors). The fixtures built on them are in
tests/admin/conftest.py.

Needs /usr/bin/chromium (CI: `apt-get install -y chromium`) and the playwright package; no
browser is downloaded."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Response,
    ViewportSize,
    expect,
    sync_playwright,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Screenshots, for a person to look at after a run (not compared by the tests).
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "a-long-browser-password"
DESKTOP = ViewportSize(width=1400, height=900)
PHONE = ViewportSize(width=390, height=844)


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, closed on the way out."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def new_page(
    browser: Browser,
    viewport: ViewportSize,
    *,
    sidebar_closed: bool = False,
    locale: str | None = None,
) -> Page:
    """A page in a context of its own (close it with page.context.close()). With
    sidebar_closed, the admin's navigation sidebar starts closed (full-page screenshots of the
    content alone); otherwise it is as a first visit has it."""
    context = browser.new_context(viewport=viewport, locale=locale)
    if sidebar_closed:
        context.add_init_script("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
    context.set_default_timeout(20_000)
    return context.new_page()


def watch_for_problems(
    page: Page, *, from_status: int = 500, problems: list[str] | None = None
) -> list[str]:
    """The list the page's problems are added to as they happen (`problems`, or a new one):
    console errors, uncaught script errors and answers with a status of `from_status` or more.
    A test asserts it empty."""
    problems = [] if problems is None else problems

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console: {message.text} {message.location}")

    def on_response(response: Response) -> None:
        if response.status >= from_status:
            problems.append(f"HTTP {response.status} {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"script: {error}"))
    page.on("response", on_response)
    return problems


def log_in(page: Page, base: str) -> None:
    """Log in as the superuser "operator" (PASSWORD), whom the test creates."""
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_be_visible()
    expect(page.locator("#site-name")).to_contain_text("batchjobs")
