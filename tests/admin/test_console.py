"""The console's frame: its menu (the product first, in an operator's order, the Celery
internals last and folded), breadcrumbs, the global stylesheet and icon, and the upcoming
runs page."""

import html
import re

import pytest
from django.urls import reverse

from batchjobs.models import JobTag
from batchjobs.services.schedules import schedule_create
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db

PRODUCT_MENU = [
    "Dashboard", "Jobs", "Schedules", "Executions", "Upcoming runs", "Tags", "Calendars",
    "Occurrences", "Dependencies", "Backfills", "Run limits", "Notifications", "Audit",
    "Preferences",
]  # fmt: skip
UPCOMING = reverse("admin:batchjobs_upcoming")


def menu(response) -> list[tuple[str, list[str]]]:
    return [
        (str(app["name"]), [str(model["name"]) for model in app["models"]])
        for app in response.context["available_apps"]
    ]


def current(response) -> list[str]:
    return [
        str(model["name"])
        for app in response.context["available_apps"]
        for model in app["models"]
        if model["current"]
    ]


def test_the_menu_leads_with_the_product_and_ends_with_the_celery_internals(admin_client):
    response = admin_client.get(reverse("admin:batchjobs_batchjob_changelist"))

    groups = menu(response)
    assert groups[0] == ("Console", PRODUCT_MENU)
    name, internals = groups[-1]
    assert name == "Internals (Celery)"
    assert set(internals) == {
        "Clocked", "Crontabs", "Intervals", "Periodic tasks", "Solar events", "Group results",
        "Task results",
    }  # fmt: skip
    assert [name for name, _models in groups[1:-1]] == [
        "Auth Token",
        "Authentication and Authorization",
    ]
    # folded, in the sidebar, with the housekeeping tasks one click away
    sidebar = response.content.decode()
    assert re.search(r'<details class="bj-internals">\s*<summary>Internals \(Celery\)', sidebar)
    assert reverse("admin:django_celery_beat_periodictask_changelist") in sidebar


def test_the_page_shown_is_marked_in_the_menu(admin_client):
    def marked(url):
        return current(admin_client.get(url))

    assert marked(reverse("admin:index")) == ["Dashboard"]
    # the dashboard's first address is under the executions': the dashboard, not them
    assert marked(reverse("admin:batchjobs_dashboard")) == ["Dashboard"]
    assert marked(reverse("admin:batchjobs_batchlog_changelist")) == ["Executions"]
    assert marked(UPCOMING) == ["Upcoming runs"]
    periodic = admin_client.get(reverse("admin:django_celery_beat_periodictask_changelist"))
    assert current(periodic) == ["Periodic tasks"]
    assert '<details class="bj-internals" open>' in periodic.content.decode()


def test_an_operator_sees_the_pages_their_permissions_allow(staff_client):
    response = staff_client("view_batchjob", "view_batchschedule").get(reverse("admin:index"))

    assert menu(response) == [("Console", ["Jobs", "Schedules", "Upcoming runs", "Preferences"])]


def test_breadcrumbs_do_not_repeat_the_models_name(admin_client):
    job = handler_job("noop")
    for url in (
        reverse("admin:batchjobs_batchjob_changelist"),
        reverse("admin:batchjobs_batchjob_change", args=[job.pk]),
    ):
        crumbs = re.search(r'<div class="breadcrumbs">(.*?)</div>', admin_client.get(url)
                           .content.decode(), re.S).group(1)  # fmt: skip
        text = " ".join(html.unescape(re.sub("<[^>]+>", " ", crumbs)).split())
        assert text.startswith("Home › Console › Jobs"), text


def test_every_page_loads_the_console_stylesheet_and_icon(admin_client, client):
    page = admin_client.get(reverse("admin:batchjobs_batchjob_changelist")).content.decode()
    assert re.search(r'<link rel="stylesheet" href="/static/batchjobs/console\.css', page)
    assert re.search(r'<link rel="icon" href="/static/batchjobs/favicon\.svg"', page)

    icon = client.get("/favicon.ico", follow=True)
    assert icon.status_code == 200 and icon.redirect_chain[-1][0].endswith("favicon.svg")
    assert b"<svg" in b"".join(icon.streaming_content)


def test_the_celery_internals_stay_reachable(admin_client):
    for label in ("django_celery_beat", "django_celery_results"):
        response = admin_client.get(reverse("admin:app_list", args=[label]))
        assert response.status_code == 200
        assert response.context["app_list"][0]["app_label"] == label


@pytest.mark.django_db
class TestUpcomingRuns:
    def test_lists_the_fires_by_day_and_hour_with_a_strip_per_job(self, admin_client):
        job = handler_job("noop", name="every-six-hours")
        schedule_create(job=job, kind="cron", cron_expression="0 */6 * * *", timezone="UTC")

        response = admin_client.get(UPCOMING)
        content = response.content.decode()

        assert response.status_code == 200
        assert len(response.context["runs"].fires) == 4  # 24 h by default
        strip = re.search(rf'<tr data-job="{job.pk}">.*?</tr>', content, re.S).group()
        assert strip.count('class="bj-fire"') == 4
        assert content.count('<span class="bj-fire-time">') == 4
        week = admin_client.get(UPCOMING, {"window": "7d"})
        assert len(week.context["runs"].fires) == 28

    def test_bad_filters_are_named_not_a_500(self, admin_client):
        response = admin_client.get(UPCOMING, {"window": "1y", "tag": "nobody"})
        content = response.content.decode()

        assert response.status_code == 200 and response.context["window"] == "24h"
        assert "window: &#x27;1y&#x27; is not one of 24h, 7d; showing 24h." in content
        assert "tag: no tag is named &#x27;nobody&#x27;." in content

    def test_filtered_by_tag(self, admin_client):
        tagged, plain = handler_job("noop", name="tagged"), handler_job("noop", name="plain")
        tagged.tags.add(JobTag.objects.create(name="team-a"))
        for job in (tagged, plain):
            schedule_create(job=job, kind="cron", cron_expression="0 */6 * * *", timezone="UTC")

        response = admin_client.get(UPCOMING, {"tag": "team-a"})

        assert [job.job_name for job in response.context["runs"].jobs] == ["tagged"]
        assert "?window=24h&amp;tag=team-a" in response.content.decode()

    def test_needs_the_permission_to_view_schedules(self, staff_client):
        assert staff_client("view_batchjob").get(UPCOMING).status_code == 403
        assert staff_client("view_batchschedule").get(UPCOMING).status_code == 200
