"""The console in Korean: a Korean browser (Accept-Language) or the language selector's cookie
renders the main pages in Korean, the product's strings and Django's own; the selector on every
page switches the language and comes back to the page; English without either. Times show to
the second in the display zone, with the zone's name."""

import re
from datetime import UTC, datetime
from html import unescape

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from batchjobs.models import BatchAttempt, BatchJob, BatchLog, ExecutionStatus, RunLimit, Trigger
from batchjobs.services.limits import limit_create
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db

KOREAN = {"HTTP_ACCEPT_LANGUAGE": "ko-KR,ko;q=0.9,en;q=0.5"}
STARTED = datetime(2026, 12, 3, 14, 50, 7, tzinfo=UTC)


@pytest.fixture
def job() -> BatchJob:
    return handler_job("noop", name="nightly-report")


@pytest.fixture
def execution(job: BatchJob) -> BatchLog:
    """A finished execution, as a worker leaves it, with its one attempt."""
    execution = BatchLog.objects.create(
        job=job,
        status=ExecutionStatus.COMPLETED,
        trigger=Trigger.MANUAL,
        attempts=1,
        max_attempts=3,
        started_at=STARTED,
        finished_at=STARTED.replace(second=19),
    )
    BatchAttempt.objects.create(
        execution=execution, number=1, started_at=STARTED, finished_at=STARTED.replace(second=19)
    )
    return execution


@pytest.fixture
def limit() -> RunLimit:
    return limit_create(scope="queue", name="batchjobs", max_running=4)


@pytest.fixture
def pages(job, execution, limit) -> dict[str, str]:
    """The console's main pages, each with product strings it shows in any state."""
    return {
        "dashboard": reverse("admin:batchjobs_dashboard"),
        "jobs": reverse("admin:batchjobs_batchjob_changelist"),
        "job": reverse("admin:batchjobs_batchjob_change", args=[job.pk]),
        "executions": reverse("admin:batchjobs_batchlog_changelist"),
        "execution": reverse("admin:batchjobs_batchlog_change", args=[execution.pk]),
        "limits": reverse("admin:batchjobs_runlimit_changelist"),
    }


# Per page: Korean it must show (the product's catalogue and Django's), and the English it
# replaces, which must be gone.
EXPECTED = {
    "dashboard": (["대시보드", "실행 중 (1)", "최근 실패", "다음 실행 예정", "초마다 갱신합니다"],
                  ["Running now", "Recent failures", "Next fires"]),
    "jobs": (["마지막 실행", "지금 실행 (기본 파라미터)", "로그아웃"],
             ["Last execution", "Run now (default parameters)", "Log out"]),
    "job": (["재시도 및 정책", "지금 실행…", "감사 기록", "실행 목록"],
            ["Retries and policy", "Run now…", "Audit trail"]),
    "executions": (["선택한 실행 중지", "대시보드", "소요 시간"],
                   ["Stop selected executions", "Duration"]),
    "execution": (["시도", "실행 컨텍스트", "소요 시간", "감사 기록"],
                  ["Execution context", "Audit trail", "Timing"]),
    "limits": (["대기 중", "실행 중"], ["Waiting", "Running"]),
}  # fmt: skip


def text_of(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def visible(content: str) -> str:
    """The page's text as read: no markup, scripts or styles (class names say "duration" too)."""
    content = re.sub(r"<(script|style)\b.*?</\1>", " ", content, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", content)).split())


@pytest.fixture
def running(job):
    """The dashboard's "running now" counts one."""
    return BatchLog.objects.create(
        job=job, status=ExecutionStatus.STARTED, trigger=Trigger.MANUAL, started_at=STARTED
    )


@pytest.mark.parametrize("page", sorted(EXPECTED))
def test_a_korean_browser_gets_the_console_in_korean(admin_client, pages, running, page):
    content = text_of(admin_client.get(pages[page], **KOREAN))

    korean, english = EXPECTED[page]
    assert '<html lang="ko"' in content
    assert [text for text in korean if text not in visible(content)] == []
    assert [text for text in english if text in visible(content)] == []


@pytest.mark.parametrize("page", sorted(EXPECTED))
def test_the_language_cookie_chooses_korean_whatever_the_browser_asks(
    admin_client, pages, running, page
):
    admin_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ko"

    content = text_of(admin_client.get(pages[page], HTTP_ACCEPT_LANGUAGE="en"))

    assert '<html lang="ko"' in content
    assert EXPECTED[page][0][0] in visible(content)


@pytest.mark.parametrize("page", sorted(EXPECTED))
def test_english_without_a_language_asked_for(admin_client, pages, running, page):
    content = text_of(admin_client.get(pages[page]))

    korean, english = EXPECTED[page]
    assert '<html lang="en"' in content
    assert [text for text in english if text not in visible(content)] == []
    assert [text for text in korean if text in visible(content)] == []


def test_the_dashboards_script_says_its_failures_in_the_pages_language(admin_client, pages):
    content = text_of(admin_client.get(pages["dashboard"], **KOREAN))

    assert 'data-text-session-ended="세션이 만료되었습니다.' in content
    assert re.search(r'data-text-update-failed="[^"]*\(HTTP \{status\}\)', content)
    assert "Your session has ended" not in content


def selector(content: str) -> str:
    found = re.search(r'<form id="language-form".*?</form>', content, re.S)
    assert found, "no language selector on the page"
    return found.group()


def test_every_page_has_the_selector_naming_each_language_in_its_own_words(admin_client, pages):
    logged_out = text_of(Client().get(reverse("admin:login")))
    for content in [logged_out, *(text_of(admin_client.get(url)) for url in pages.values())]:
        form = selector(content)
        assert f'action="{reverse("set_language")}"' in form
        assert re.search(r'<option value="en" lang="en" selected>\s*English\s*</option>', form)
        assert re.search(r'<option value="ko" lang="ko">\s*한국어\s*</option>', form)


def test_the_selector_switches_the_language_and_comes_back_to_the_page(admin_client, pages):
    job_page = pages["job"]
    form = selector(text_of(admin_client.get(job_page)))
    (next_page,) = re.findall(r'name="next" type="hidden" value="([^"]*)"', form)
    assert next_page == job_page

    switched = admin_client.post(reverse("set_language"), {"language": "ko", "next": next_page})

    assert switched.status_code == 302 and switched["Location"] == job_page
    assert switched.cookies[settings.LANGUAGE_COOKIE_NAME].value == "ko"
    content = text_of(admin_client.get(job_page))
    assert '<html lang="ko"' in content and "재시도 및 정책" in content
    assert re.search(r'<option value="ko" lang="ko" selected>', selector(content))

    # and back to English
    admin_client.post(reverse("set_language"), {"language": "en", "next": next_page})
    assert "Retries and policy" in text_of(admin_client.get(job_page))


def test_the_login_page_speaks_korean_too():
    content = text_of(Client().get(reverse("admin:login"), **KOREAN))

    assert '<html lang="ko"' in content
    assert "batchjobs" in content  # the site's name
    assert "로그인" in content  # Django's own Korean


def test_times_show_to_the_second_in_the_display_zone(admin_client, pages, settings):
    """The execution's times, and the dashboard's, in the deployment's display zone."""
    settings.BATCHJOBS_TIME_ZONE = "Asia/Seoul"

    execution_page = text_of(admin_client.get(pages["execution"]))
    dashboard = text_of(admin_client.get(reverse("admin:batchjobs_dashboard_live")))

    # 14:50:07 UTC is 23:50:07 in Seoul: the execution's start, and its attempt's (to the
    # millisecond, the date on hover)
    assert ">2026-12-03 23:50:07 KST</time>" in execution_page
    assert 'title="2026-12-03 23:50:07 KST">23:50:07.000</time>' in execution_page
    assert ">2026-12-03 23:50:19 KST</time>" in execution_page
    # the dashboard's time of its figures, and its chart's hours
    assert re.search(r'id="dashboard-updated">[^<]*<time datetime="[^"]+">[-\d: ]+ KST<', dashboard)
    assert re.search(r"<title>\d\d:00 KST: 1 COMPLETED</title>", dashboard)
