"""The console as a Korean operator sees it, in Debian's Chromium with a Korean locale
(Accept-Language ko-KR) against a live server: on each main page, no English string of the
product's catalogue is left in the visible text. The check reads the catalogue itself
(locale/ko/LC_MESSAGES/django.po): every English text of the product that a page can show
is one of its msgids. Screenshots go to test-artifacts/ko-*.png.

Needs /usr/bin/chromium and the playwright package, as tests/support/browser.py says."""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import Browser, Page, ViewportSize, expect

from batchjobs.handlers.registry import handlers_all
from batchjobs.models import BatchAttempt, BatchLog, ExecutionStatus, Trigger
from batchjobs.services.limits import limit_create
from batchjobs.services.schedules import schedule_create
from tests.support.browser import ARTIFACTS, PASSWORD, log_in, new_page
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db(transaction=True)

CATALOGUE = Path(settings.LOCALE_PATHS[0]) / "ko" / "LC_MESSAGES" / "django.po"
# Names, codes and units the Korean text keeps as they are (they are not English prose).
KEPT = {"batchjobs", "cron", "HTTP", "JSON", "API", "URL", "Redis", "Python", "UTC", "Beat"}
# A text shorter than this is a unit or a symbol ("s", "min", "ago"), too short to tell.
SHORTEST = 4
# What separates the literal parts of a msgid: placeholders (%(name)s, %s, {name}, {}) and
# markup, which the visible text does not show as written.
NOT_LITERAL = re.compile(r"%\(\w+\)[sdfr]|%[sdfr]|\{\w*\}|<[^>]+>")


@dataclass(frozen=True)
class Entry:
    msgid: str
    msgid_plural: str
    translations: tuple[str, ...]


def po_entries(path: Path) -> Iterator[Entry]:
    """The entries of a gettext catalogue as makemessages and msgmerge write it: blocks apart by
    a blank line; comments (and obsolete #~ entries) left out, the header (empty msgid) too."""
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        fields: dict[str, str] = {}
        last = ""
        for line in block.splitlines():
            line = line.strip()
            keyword = re.match(r'(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?) (".*")$', line)
            if keyword:
                last = keyword[1]
                fields[last] = unquote(keyword[2])
            elif line.startswith('"') and last:
                fields[last] += unquote(line)
        if fields.get("msgid"):
            yield Entry(
                fields["msgid"],
                fields.get("msgid_plural", ""),
                tuple(value for key, value in fields.items() if key.startswith("msgstr")),
            )


def unquote(quoted: str) -> str:
    escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
    return re.sub(r"\\(.)", lambda m: escapes.get(m[1], m[1]), quoted[1:-1])


def english_texts(entries: list[Entry]) -> set[str]:
    """The literal English parts of the product's msgids that a page would show verbatim when
    left untranslated; a msgid its translation keeps as is (a name) is not English left."""
    texts = set()
    for entry in entries:
        for english in filter(None, (entry.msgid, entry.msgid_plural)):
            if english in entry.translations:
                continue
            for part in NOT_LITERAL.split(english):
                part = " ".join(part.split()).strip(" .,:;()—-…")
                if len(part) >= SHORTEST and part not in KEPT and re.search("[A-Za-z]", part):
                    texts.add(part)
    return texts


def authors_words() -> list[str]:
    """What the handlers of the worked examples and of the tests say of themselves: their
    authors' words, shown as written, as a job's name is (the product's own handlers' are the
    product's and are checked)."""
    return [
        handler.description
        for handler in handlers_all()
        if handler.description and not handler.fn.__module__.startswith("batchjobs.")
    ]


def english_left(visible_text: str, texts: set[str]) -> dict[str, str]:
    """The English texts found in a page's visible text, as whole words (case as written), each
    with where it was found."""
    flat = " ".join(visible_text.split())
    for words in authors_words():
        flat = flat.replace(" ".join(words.split()), " ")
    found = {}
    for text in sorted(texts):
        match = re.search(rf"(?<![\w]){re.escape(text)}(?![\w])", flat)
        if match:
            found[text] = flat[max(0, match.start() - 40) : match.end() + 40]
    return found


@pytest.fixture(scope="module")
def catalogue_texts() -> set[str]:
    assert CATALOGUE.exists(), f"no Korean catalogue at {CATALOGUE}"
    texts = english_texts(list(po_entries(CATALOGUE)))
    assert len(texts) > 100  # the product's catalogue, not an empty one
    return texts


def page_in(browser: Browser, locale: str) -> Page:
    return new_page(
        browser, ViewportSize(width=1400, height=1000), sidebar_closed=True, locale=locale
    )


@pytest.fixture
def console(django_user_model) -> dict[str, str]:
    """A console with something on each main page: a job with a schedule, a finished and a
    running execution with attempts, a failure, and a limit. Its pages by name."""
    django_user_model.objects.create_superuser("operator", "ops@example.com", PASSWORD)
    job = handler_job("noop", name="nightly-report")
    schedule_create(job=job, kind="cron", cron_expression="30 2 * * *", timezone="Asia/Seoul")
    now = timezone.now()
    done = BatchLog.objects.create(
        job=job, status=ExecutionStatus.COMPLETED, trigger=Trigger.SCHEDULE, attempts=1,
        max_attempts=3, started_at=now - timedelta(seconds=80), finished_at=now,
    )  # fmt: skip
    BatchAttempt.objects.create(
        execution=done, number=1, started_at=done.started_at, finished_at=done.finished_at
    )
    BatchLog.objects.create(
        job=job, status=ExecutionStatus.FAILED, trigger=Trigger.SCHEDULE, attempts=3,
        max_attempts=3, started_at=now - timedelta(minutes=5), finished_at=now,
        error="ConnectionError: 10.0.0.7:5432",
    )  # fmt: skip
    BatchLog.objects.create(
        job=job, status=ExecutionStatus.STARTED, trigger=Trigger.MANUAL, attempts=1,
        max_attempts=3, started_at=now - timedelta(seconds=30),
    )  # fmt: skip
    limit_create(scope="queue", name="batchjobs", max_running=4)
    admin = "/admin/batchjobs"
    return {
        "dashboard": f"{admin}/batchlog/dashboard/",
        "jobs": f"{admin}/batchjob/",
        "job": f"{admin}/batchjob/{job.pk}/change/",
        "executions": f"{admin}/batchlog/",
        "execution": f"{admin}/batchlog/{done.pk}/change/",
        "schedules": f"{admin}/batchschedule/",
        "limits": f"{admin}/runlimit/",
    }


# The page's prose as shown: text nodes on screen, outside code, JSON and typed values (<pre>,
# <code>, form fields) and names the page marks translate="no" (workers' host names), which show
# data as it is, not the product's words.
VISIBLE_PROSE = """() => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const texts = [];
  while (walker.nextNode()) {
    const parent = walker.currentNode.parentElement;
    if (parent.closest("pre, code, textarea, script, style, select, [translate=no]")) continue;
    if (!parent.checkVisibility({visibilityProperty: true})) continue;
    texts.push(walker.currentNode.textContent);
  }
  const options = [...document.querySelectorAll("select")]
    .filter((select) => select.checkVisibility())
    .map((select) => select.selectedOptions[0]?.textContent ?? "");
  return [...texts, ...options].join(" ");
}"""


def visible_text(page: Page, base: str, path: str, name: str) -> str:
    page.goto(f"{base}{path}")
    expect(page.locator("#content")).to_be_visible()
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)
    return page.evaluate(VISIBLE_PROSE)


def test_no_english_of_the_product_is_left_on_the_korean_console(
    live_server, browser, console, catalogue_texts
):
    base = live_server.url
    page = page_in(browser, "ko-KR")
    log_in(page, base)
    assert page.locator("html").get_attribute("lang") == "ko"

    left = {}
    for name, path in console.items():
        text = visible_text(page, base, path, f"ko-{name}")
        assert page.locator("html").get_attribute("lang") == "ko", name
        left[name] = english_left(text, catalogue_texts)

    leftover = [
        f"  {name}: {text!r} in …{where}…"
        for name, found in left.items()
        for text, where in found.items()
    ]
    assert not leftover, "English left on the Korean console:\n" + "\n".join(leftover)


def test_the_check_finds_the_english_of_an_english_console(
    live_server, browser, console, catalogue_texts
):
    """The same check on the console in English finds the product's English on every page:
    the check above can fail."""
    base = live_server.url
    page = page_in(browser, "en-US")
    log_in(page, base)

    left = {
        name: english_left(visible_text(page, base, path, f"en-{name}"), catalogue_texts)
        for name, path in console.items()
    }

    assert [name for name, texts in left.items() if not texts] == []
    assert "Recent failures" in left["dashboard"] and "Retries and policy" in left["job"]
