"""The dashboard: health of beat and workers, executions by status, what runs (with progress,
rate and ETA) and what is due, recent failures, SVG charts, and its live fragment."""

import dataclasses
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from batchjobs.admin.dashboard import live_context
from batchjobs.models import BatchLog, BatchSchedule, ExecutionStatus, StepExecution, Trigger
from batchjobs.models.clock import database_now
from batchjobs.selectors.dashboard import (
    dashboard,
    duration_percentiles,
    executions_per_hour,
    percentile,
)
from batchjobs.selectors.liveness import Liveness
from batchjobs.selectors.progress import execution_progress
from batchjobs.selectors.set_aside import SetAsideCounts
from batchjobs.services.schedules import schedule_create
from tests.support.factories import handler_job
from tests.support.processes import start_beat, wait_until

DASHBOARD = reverse("admin:batchjobs_dashboard")
LIVE = reverse("admin:batchjobs_dashboard_live")


def execution(job, status=ExecutionStatus.COMPLETED, *, minutes_ago=0.0, seconds=None, **fields):
    """An execution as a worker leaves it."""
    created = timezone.now() - timedelta(minutes=minutes_ago)
    row = BatchLog.objects.create(job=job, trigger=Trigger.SCHEDULE, status=status, attempts=1,
                                  max_attempts=3, **fields)  # fmt: skip
    update = {"created_at": created}
    if seconds is not None:
        update |= {"started_at": created, "finished_at": created + timedelta(seconds=seconds)}
    BatchLog.objects.filter(pk=row.pk).update(**update)
    row.refresh_from_db()
    return row


@pytest.mark.django_db
class TestPage:
    def test_the_home_is_the_dashboard_for_those_who_may_see_executions(self, staff_client):
        allowed = staff_client("view_batchlog").get(reverse("admin:index")).content.decode()
        refused = staff_client("view_batchjob").get(reverse("admin:index")).content.decode()

        assert 'id="status-card"' in allowed and 'id="dashboard-live"' in allowed
        assert f'data-url="{LIVE}"' in allowed
        assert 'id="dashboard-live"' not in refused and 'id="status-card"' not in refused
        assert 'id="dashboard-hidden"' in refused and 'id="home-menu"' in refused

    def test_its_first_address_serves_the_home(self, admin_client):
        home = admin_client.get(reverse("admin:index"), {"refresh": "7"})
        old = admin_client.get(DASHBOARD, {"refresh": "7"})

        assert old.status_code == home.status_code == 200
        assert old.templates[0].name == home.templates[0].name == "admin/batchjobs/dashboard.html"
        assert 'data-refresh-seconds="7"' in old.content.decode()

    def test_it_needs_the_permission_to_view_executions(self, staff_client):
        without = staff_client("view_batchjob")
        assert without.get(DASHBOARD).status_code == 403
        assert without.get(LIVE).status_code == 403
        assert staff_client("view_batchlog").get(DASHBOARD).status_code == 200

    def test_it_refreshes_its_live_part_itself_every_30_seconds_by_default(self, admin_client):
        page = admin_client.get(DASHBOARD).content.decode()
        faster = admin_client.get(DASHBOARD, {"refresh": "5"}).content.decode()
        silly = admin_client.get(DASHBOARD, {"refresh": "0"}).content.decode()
        live = admin_client.get(LIVE)

        assert f'data-url="{LIVE}"' in page and 'data-refresh-seconds="30"' in page
        assert 'data-refresh-seconds="5"' in faster and 'data-refresh-seconds="2"' in silly
        assert "setInterval(refresh, every)" in page and "fetch(box.dataset.url" in page
        assert not re.search(r'<script[^>]+src="(https?:)?//', page)  # no CDN: all served here
        # the fragment is the live part alone, never cached
        assert live.status_code == 200 and "<html" not in live.content.decode()
        assert "no-cache" in live["Cache-Control"]
        assert 'id="running"' in live.content.decode()


@pytest.mark.django_db
class TestContent:
    def test_counts_running_due_and_failures(self, admin_client):
        job = handler_job("sleep", name="warehouse-sync", params={"seconds": 1})
        execution(job, ExecutionStatus.COMPLETED, minutes_ago=30, seconds=12)
        execution(job, ExecutionStatus.COMPLETED, minutes_ago=60 * 30)  # outside 24 h
        failed = execution(
            job, ExecutionStatus.FAILED, minutes_ago=5, seconds=3,
            error="Traceback (most recent call last):\n  ...\nConnectionError: warehouse down",
        )  # fmt: skip
        running = execution(
            job, ExecutionStatus.STARTED, worker="celery@node-7",
            progress_done=30, progress_total=120,
        )  # fmt: skip
        BatchLog.objects.filter(pk=running.pk).update(
            started_at=database_now() - timedelta(seconds=60)
        )
        schedule = schedule_create(
            job=job, kind="cron", cron_expression="30 2 * * *", timezone="America/New_York"
        )

        response = admin_client.get(LIVE)
        content = response.content.decode()
        context = response.context

        assert context["data"].counts[ExecutionStatus.COMPLETED] == 1  # the last 24 h only
        assert context["data"].counts[ExecutionStatus.STARTED] == 1
        assert "Running now (1)" in content and "celery@node-7" in content
        # progress: 30 of 120 in ~60 s: ~0.5 items/s, ~3 min to go
        assert re.search(r'<progress max="100" value="25\.0"', content)
        assert re.search(r"30 of 120 items · 0\.5 items/s · ETA 3 min \d+ s", content)
        # the next fire, in UTC and in the schedule's zone
        assert escape(schedule.summary) in content
        local = schedule.next_fire_at.astimezone(ZoneInfo("America/New_York"))
        assert f"{local:%Y-%m-%d} 02:30:00 E" in content  # EST or EDT
        assert "ConnectionError: warehouse down" in content
        assert f'href="{reverse("admin:batchjobs_batchlog_change", args=[failed.pk])}"' in content

    def test_the_status_card_has_the_scheduler_totals_and_the_next_job(self, admin_client):
        # given two jobs, one with a schedule, and executions of every age
        job, other = handler_job("noop", name="card-next"), handler_job("noop", name="card-idle")
        execution(job, ExecutionStatus.COMPLETED, minutes_ago=60 * 30)  # not counted: > 24 h
        execution(job, ExecutionStatus.COMPLETED, minutes_ago=60 * 23)
        execution(other, ExecutionStatus.FAILED, minutes_ago=5)
        execution(other, ExecutionStatus.QUEUED)
        schedule = schedule_create(
            job=job, kind="once", run_at=timezone.now() + timedelta(minutes=10, seconds=30)
        )

        # when
        response = admin_client.get(LIVE)
        content = response.content.decode()

        # then: the card's figures are GET /api/scheduler's, over the dashboard's 24 hours
        card = response.context["card"]
        assert dict(card["totals"]) == {
            "Jobs": 2, "Waiting": 2, "Running": 0, "Completed, 24 h": 1, "Failed, 24 h": 1,
        }  # fmt: skip
        assert card["next_due"].schedule_id == schedule.pk and not card["next_due_late"]
        status = content[content.index('id="status-card"') : content.index("</section>")]
        text = " ".join(re.sub("<[^>]+>", " ", status).split())
        assert re.search(r"Next to fire: card-next \d{4}-\d\d-\d\d [\d:]+ UTC \(in 10 min\)", text)
        assert f'href="{reverse("admin:batchjobs_batchjob_change", args=[job.pk])}"' in status
        assert "Jobs 2 Waiting 2 Running 0 Completed, 24 h 1 Failed, 24 h 1" in text

    def test_rows_set_aside_are_counted_with_links_to_them_only_when_there_are_some(
        self, admin_client
    ):
        # given nothing set aside: no warning
        job = handler_job("noop")
        assert 'id="set-aside"' not in admin_client.get(LIVE).content.decode()
        # when beat has set a schedule aside and housekeeping two executions
        schedule = schedule_create(job=job, kind="interval", interval_every=1)
        BatchSchedule.objects.filter(pk=schedule.pk).update(
            set_aside_at=database_now(), set_aside_reason="OverflowError: date value out of range"
        )
        for _ in range(2):
            execution(job, ExecutionStatus.FAILED, set_aside_at=database_now())
        # then the dashboard says so, in the admin's warning style, with links to each list
        response = admin_client.get(LIVE)
        content = response.content.decode()
        assert response.context["data"].set_aside == SetAsideCounts(schedules=1, executions=2)
        warning = re.search(r'<ul class="messagelist" id="set-aside">.*?</ul>', content, re.S)
        assert warning and 'class="warning"' in warning.group()
        schedules = reverse("admin:batchjobs_batchschedule_changelist") + "?set_aside=yes"
        executions = reverse("admin:batchjobs_batchlog_changelist") + "?set_aside=yes"
        assert f'<a href="{schedules}">1 schedule</a>' in warning.group()
        assert f'<a href="{executions}">2 executions</a>' in warning.group()
        # and a set-aside schedule is not among the next fires: beat does not fire it
        assert schedule not in response.context["data"].upcoming

    def test_a_due_schedule_with_an_unknown_time_zone_does_not_break_the_page(self, admin_client):
        # given a schedule whose zone was stored behind validation's back, before beat sees it
        schedule = schedule_create(job=handler_job("noop"), kind="interval", interval_every=1)
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE batchjobs_batchschedule SET timezone = 'Nowhere/Land' WHERE id = %s",
                [schedule.pk],
            )
        response = admin_client.get(LIVE)
        assert response.status_code == 200
        assert "unknown time zone &#x27;Nowhere/Land&#x27;" in response.content.decode()

    def test_a_running_batch_step_shows_items_rate_and_an_eta_from_its_readers_count(self):
        job = handler_job("noop")
        # (the last run's count is another input's: not this run's total)
        last = execution(job, ExecutionStatus.COMPLETED, minutes_ago=10, seconds=100)
        StepExecution.objects.create(execution=last, step_name="load", status="COMPLETED",
                                     read_count=199_960)  # fmt: skip
        now = database_now()
        running = execution(job, ExecutionStatus.STARTED)
        StepExecution.objects.create(
            execution=running, step_name="load", status="STARTED", read_count=250,
            started_at=now - timedelta(seconds=50), heartbeat_at=now,
            execution_context={"items_total": 1000},
        )  # fmt: skip

        [step] = execution_progress(execution=running, now=now)

        assert (step.label, step.done, step.total, step.total_estimated) == (
            "load",
            250,
            1000,
            True,
        )
        assert step.rate == pytest.approx(5.0)
        assert step.eta_seconds == pytest.approx(150.0)
        assert step.percent == pytest.approx(25.0)

    def test_a_step_of_unknown_size_shows_an_indeterminate_bar(self, admin_client):
        job = handler_job("noop")
        running = execution(job, ExecutionStatus.STARTED)
        BatchLog.objects.filter(pk=running.pk).update(started_at=database_now())
        StepExecution.objects.create(execution=running, step_name="load", status="STARTED",
                                     read_count=40, started_at=database_now())  # fmt: skip

        content = admin_client.get(LIVE).content.decode()

        assert '<progress style="width:100%;max-width:360px;height:12px"></progress>' in content
        assert "load: 40 items" in content and "total unknown" in content

    def test_executions_per_hour_chart_stacks_statuses(self, admin_client):
        job = handler_job("noop")
        for status in ("COMPLETED", "COMPLETED", "FAILED"):
            execution(job, status, minutes_ago=0)
        execution(job, "COMPLETED", minutes_ago=120)

        hours = executions_per_hour()
        content = admin_client.get(LIVE).content.decode()

        assert len(hours) == 24 and hours[-1].counts == {"COMPLETED": 2, "FAILED": 1}
        assert sum(hour.total for hour in hours) == 4
        chart = content[content.index('id="chart-per-hour"') :]
        assert chart.count('<rect class="bar"') == 3  # two hours: two bars, then one
        assert re.search(r"<title>\d\d:00 UTC: 2 COMPLETED</title>", chart)
        assert re.search(r"<title>\d\d:00 UTC: 1 FAILED</title>", chart)

    def test_duration_percentiles_per_job(self, admin_client):
        fast, slow = handler_job("noop", name="fast"), handler_job("noop", name="slow")
        for seconds in range(1, 21):  # 1..20 s
            execution(slow, "COMPLETED", minutes_ago=1, seconds=seconds)
        execution(fast, "COMPLETED", minutes_ago=1, seconds=0.5)
        execution(fast, "FAILED", minutes_ago=1, seconds=99)  # failures are not "how long it takes"

        durations = duration_percentiles()
        content = admin_client.get(LIVE).content.decode()

        assert [(d.job_name, d.samples, d.p50, d.p95) for d in durations] == [
            ("slow", 20, 10.5, 19.0), ("fast", 1, 0.5, 0.5),
        ]  # fmt: skip
        assert "p50 10.5 s · p95 19.0 s · n=20" in content
        assert "<title>slow: p95 19.0 s</title>" in content

    def test_percentile_is_the_nearest_rank(self):
        values = [float(v) for v in range(1, 101)]
        assert (percentile(values, 0.5), percentile(values, 0.95), percentile([7.0], 0.95)) == (
            50.0, 95.0, 7.0,
        )  # fmt: skip

    def test_health_when_beat_is_down_or_the_broker_unreachable(self):
        data = dashboard()
        down = Liveness(broker_reachable=True, beats=[], workers=[])
        away = Liveness(broker_reachable=False, beats=[], workers=None)

        def render(health):
            context = live_context(dataclasses.replace(data, health=health))
            return render_to_string("admin/batchjobs/dashboard_live.html", context)

        assert "No beat heartbeat: schedules are not firing." in render(down)
        assert "No worker is present." in render(down)
        assert render(away).count("The broker (Redis) does not answer.") == 2


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_health_shows_the_real_beat_and_worker(worker, admin_client):
    # A beat of its own, so that what is shown is this beat's heartbeat from its first tick.
    beat = start_beat()
    try:
        check_health_cards(admin_client, beat_pid=beat.popen.pid, worker_name=worker.name)
    finally:
        beat.stop()


def check_health_cards(admin_client, *, beat_pid: int, worker_name: str) -> None:
    seen = []

    def healthy_cards() -> tuple[str, str] | None:
        content = admin_client.get(LIVE).content.decode()
        beat = content[content.index('id="beat-status"') : content.index('id="worker-status"')]
        workers = content[content.index('id="worker-status"') : content.index('id="counts-now"')]
        seen[:] = [" ".join(re.sub("<[^>]+>", " ", beat + workers).split())]
        return (beat, workers) if f":{beat_pid}" in beat and worker_name in workers else None

    # the beat's first heartbeat may take a tick to arrive
    try:
        beat_card, worker_card = wait_until(healthy_cards, timeout=60, interval=0.5)
    except AssertionError as error:
        raise AssertionError(f"the dashboard showed: {seen}") from error
    assert "alive" in beat_card and "last seen" in beat_card
    assert "alive" in worker_card
