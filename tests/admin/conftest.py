"""Clients for driving the admin as a browser would (the forms they submit are in
tests/support/admin_forms.py), and Debian's Chromium for the browser tests
(tests/support/browser.py)."""

from collections.abc import Callable, Iterator

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from playwright.sync_api import Browser, Page, ViewportSize

from tests.support.browser import (
    ARTIFACTS,
    PASSWORD,
    chromium,
    log_in,
    new_page,
    watch_for_problems,
)


@pytest.fixture
def staff_client(django_user_model) -> Callable[..., Client]:
    """A client logged in as a staff user holding exactly the given batchjobs permissions."""

    def login(*codenames: str) -> Client:
        user = django_user_model.objects.create_user(
            username=f"staff-{'-'.join(codenames) or 'none'}", password="x", is_staff=True
        )
        user.user_permissions.set(
            Permission.objects.filter(content_type__app_label="batchjobs", codename__in=codenames)
        )
        client = Client()
        client.force_login(user)
        return client

    return login


@pytest.fixture
def browser(monkeypatch) -> Iterator[Browser]:
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # between page actions are still plain synchronous calls.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(exist_ok=True)
    with chromium() as launched:
        yield launched


@pytest.fixture
def browser_page(browser: Browser) -> Iterator[Page]:
    """A page at 1400x1000, the navigation sidebar closed."""
    page = new_page(browser, ViewportSize(width=1400, height=1000), sidebar_closed=True)
    yield page
    page.context.close()


@pytest.fixture
def watched_page(browser_page: Page) -> Iterator[Page]:
    """browser_page; any console error, script error or server error (5xx) it sees fails the
    test at its end."""
    problems = watch_for_problems(browser_page)
    yield browser_page
    assert problems == []


@pytest.fixture
def logged_in(live_server, watched_page: Page, django_user_model) -> tuple[Page, str]:
    """watched_page logged in as the superuser "operator", and the live server's address."""
    django_user_model.objects.create_superuser("operator", "ops@example.com", PASSWORD)
    log_in(watched_page, live_server.url)
    return watched_page, live_server.url
