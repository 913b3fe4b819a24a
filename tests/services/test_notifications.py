"""Notifications per job: which events fire, each sent once, through email (Django's locmem
backend), a JSON webhook and a Slack-compatible webhook (a local pytest-httpserver), and a
failing channel recorded without touching the job. The last tests go through a real worker."""

import json
import socket
from datetime import timedelta

import pytest
from werkzeug import Response

from batchjobs.errors import InvalidInput
from batchjobs.models import (
    BatchJob,
    BatchLog,
    BatchSchedule,
    ExecutionStatus,
    JobNotification,
    NotificationEvent,
    NotificationSent,
    NotificationStatus,
    OccurrenceOutcome,
)
from batchjobs.models.clock import database_now
from batchjobs.scheduling.occurrences import Occurrence, occurrences_record
from batchjobs.services.notifications import (
    notification_deliver,
    notification_save,
    notifications_check_missed,
    notifications_execution_ended,
    notifications_relay_pending,
)
from batchjobs.services.notifications.messages import notification_message
from batchjobs.services.schedules import schedule_create
from tests.support.engines import refuse_rows
from tests.support.factories import finished, handler_job, start
from tests.support.processes import wait_until


def subscribe(job: BatchJob, channel: str, target: str, **events: bool) -> JobNotification:
    return notification_save(
        notification=JobNotification(job=job, channel=channel, target=target, **events)
    )


def events_of(execution: BatchLog, capture) -> list[str]:
    with capture():
        claimed = notifications_execution_ended(execution_id=execution.pk, status=execution.status)
    return [sent.event for sent in claimed]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db
class TestConfiguration:
    @pytest.mark.parametrize(
        ("channel", "target", "events", "field", "message"),
        [
            ("email", "ops@example.com, not-an-address", {}, "target", "not an email address"),
            ("webhook", "ftp://example.com/hook", {}, "target", "scheme must be http or https"),
            ("webhook", "http://10.1.2.3/hook", {}, "target", "non-public address"),
            ("slack", "http://169.254.169.254/", {}, "target", "non-public address"),
            ("slack", "   ", {}, "target", "Enter where to send"),
            (
                "email",
                "ops@example.com",
                {"on_failure": False, "on_recovered": False},
                "on_failure",
                "at least one event",
            ),
            ("sms", "+4912345", {}, "channel", "Choose one of"),
        ],
    )
    def test_bad_input_names_the_field_and_saves_nothing(
        self, channel, target, events, field, message
    ):
        job = handler_job("noop")
        with pytest.raises(InvalidInput) as raised:
            subscribe(job, channel, target, **events)
        assert any(message in text for text in raised.value.field_errors[field]), raised.value
        assert not JobNotification.objects.exists()

    def test_the_job_admin_edits_notifications_inline(self, admin_client):
        from django.urls import reverse

        from tests.support.admin_forms import job_form_data

        data = job_form_data(
            name="with-hook",
            **{
                "notifications-TOTAL_FORMS": "1",
                "notifications-0-channel": "webhook",
                "notifications-0-target": "http://10.0.0.9/hook",
                "notifications-0-on_failure": "on",
                "notifications-0-missed_grace_seconds": "300",
                "notifications-0-enabled": "on",
            },
        )
        refused = admin_client.post(reverse("admin:batchjobs_batchjob_add"), data)
        assert refused.status_code == 200
        assert "non-public address" in refused.content.decode()
        assert not BatchJob.objects.filter(name="with-hook").exists()  # nothing half-saved

        data["notifications-0-target"] = "https://hooks.example.com/batchjobs"
        saved = admin_client.post(reverse("admin:batchjobs_batchjob_add"), data)
        assert saved.status_code == 302
        notification = JobNotification.objects.get(job__name="with-hook")
        assert notification.events == [NotificationEvent.FAILURE]


@pytest.mark.django_db
class TestDeciding:
    def test_a_failure_is_claimed_once(self, django_capture_on_commit_callbacks):
        job = handler_job("noop")
        subscribe(job, "email", "ops@example.com")
        failed = finished(job, ExecutionStatus.FAILED)

        assert events_of(failed, django_capture_on_commit_callbacks) == ["failure"]
        assert events_of(failed, django_capture_on_commit_callbacks) == []  # seen already
        assert NotificationSent.objects.get().status == NotificationStatus.PENDING

    def test_a_retry_or_a_stop_fires_nothing(self, django_capture_on_commit_callbacks):
        job = handler_job("noop")
        subscribe(job, "email", "ops@example.com", on_slow=True)
        for status in (ExecutionStatus.QUEUED, ExecutionStatus.STOPPED):
            assert events_of(finished(job, status), django_capture_on_commit_callbacks) == []

    def test_recovered_means_a_success_right_after_a_failure(
        self, django_capture_on_commit_callbacks
    ):
        job = handler_job("noop")
        subscribe(job, "email", "ops@example.com")
        outcomes = [
            ExecutionStatus.COMPLETED,
            ExecutionStatus.FAILED,
            ExecutionStatus.STOPPED,  # ignored: neither success nor failure
            ExecutionStatus.COMPLETED,
            ExecutionStatus.COMPLETED,
        ]
        seen = [events_of(finished(job, s), django_capture_on_commit_callbacks) for s in outcomes]
        assert seen == [[], ["failure"], [], ["recovered"], []]

    def test_slow_means_over_three_times_the_median_of_recent_runs(
        self, django_capture_on_commit_callbacks
    ):
        job = handler_job("noop")
        subscribe(job, "email", "ops@example.com", on_failure=False, on_slow=True)
        first = [finished(job, ExecutionStatus.COMPLETED, seconds=s) for s in (9, 10, 11, 10)]
        # four samples: too few to know what is usual
        assert events_of(first[-1], django_capture_on_commit_callbacks) == []
        assert events_of(
            finished(job, ExecutionStatus.COMPLETED, seconds=60), django_capture_on_commit_callbacks
        ) == []  # fmt: skip
        # now there are five (median 10 s): 29 s is not news, 31 s is
        assert events_of(
            finished(job, ExecutionStatus.COMPLETED, seconds=29), django_capture_on_commit_callbacks
        ) == []  # fmt: skip
        assert events_of(
            finished(job, ExecutionStatus.COMPLETED, seconds=40), django_capture_on_commit_callbacks
        ) == ["slow"]  # fmt: skip

    def test_a_disabled_notification_or_another_jobs_event_fires_nothing(
        self, django_capture_on_commit_callbacks
    ):
        job, other = handler_job("noop"), handler_job("noop")
        notification_save(
            notification=JobNotification(
                job=job, channel="email", target="ops@example.com", enabled=False
            )
        )
        subscribe(other, "email", "ops@example.com")
        assert events_of(finished(job, "FAILED"), django_capture_on_commit_callbacks) == []

    def test_missed_fires_dead_man(self, django_capture_on_commit_callbacks):
        # given a schedule whose next fire is 10 minutes overdue (beat has been down)
        job = handler_job("noop", name="nightly")
        subscribe(job, "email", "ops@example.com", on_failure=False, on_missed=True)
        schedule = schedule_create(job=job, kind="interval", interval_every=1)
        now = database_now()
        BatchSchedule.objects.filter(pk=schedule.pk).update(
            next_fire_at=now - timedelta(minutes=10)
        )
        paused = schedule_create(job=job, kind="interval", interval_every=1, paused=True)
        BatchSchedule.objects.filter(pk=paused.pk).update(next_fire_at=now - timedelta(hours=1))

        with django_capture_on_commit_callbacks() as enqueued:
            claimed = notifications_check_missed(now=now)
            again = notifications_check_missed(now=now + timedelta(minutes=1))
        with django_capture_on_commit_callbacks():
            too_early = notifications_check_missed(now=now - timedelta(minutes=6))

        # then the overdue fire is told once; the paused schedule is not late, it is paused
        assert [(s.event, s.schedule_id) for s in claimed] == [("missed", schedule.pk)]
        assert again == [] and too_early == [] and len(enqueued) == 1
        assert claimed[0].due_at == now - timedelta(minutes=10)

    def test_fires_skipped_as_missed_are_one_missed_run_per_pass(
        self, django_capture_on_commit_callbacks
    ):
        # given a pass of beat that skipped three fires as missed (misfire policy skip), and a
        # fire the overlap policy skipped
        job = handler_job("noop")
        subscribe(job, "email", "ops@example.com", on_failure=False, on_missed=True)
        schedule = schedule_create(job=job, kind="interval", interval_every=1)
        now = database_now()
        fires = [now - timedelta(minutes=minutes) for minutes in (30, 20, 10)]
        skip = OccurrenceOutcome.MISSED_SKIPPED
        occurrences_record(
            [Occurrence(schedule.pk, fires[0], skip, "misfire skip", fires=2,
                        last_scheduled_for=fires[1]),
             Occurrence(schedule.pk, fires[2], skip, "misfire skip: more than 60 s late"),
             Occurrence(schedule.pk, now, OccurrenceOutcome.SKIPPED_OVERLAP)],
            now=now,
        )  # fmt: skip

        with django_capture_on_commit_callbacks():
            claimed = notifications_check_missed(now=now)
            again = notifications_check_missed(now=now)

        # then one event, at the latest fire skipped, said as skipped, not as late
        assert [(s.event, s.schedule_id, s.due_at) for s in claimed] == [
            ("missed", schedule.pk, fires[2])
        ]
        assert again == []
        message = notification_message(sent=claimed[0])
        assert "skipped as missed" in message.text
        assert "more than 60 s late" in message.text
        assert message.payload["schedule"]["skipped"]["fires"] == 1

    def test_a_missed_run_the_database_refuses_is_left_out_and_the_others_are_told(
        self, django_capture_on_commit_callbacks
    ):
        # given three overdue schedules, and a database that refuses one's event row with a
        # data error (an IntegrityError would read as the event claimed before), on two jobs
        # that want missed runs
        jobs = [handler_job("noop"), handler_job("noop")]
        for job in jobs:
            subscribe(job, "email", "ops@example.com", on_failure=False, on_missed=True)
        schedules = [
            schedule_create(job=job, kind="interval", interval_every=1)
            for job in (jobs[0], jobs[0], jobs[1])
        ]
        now = database_now()
        BatchSchedule.objects.filter(pk__in=[s.pk for s in schedules]).update(
            next_fire_at=now - timedelta(minutes=10)
        )
        refused = schedules[0]
        refuse_rows(
            name="test_refuses_event",
            table="batchjobs_notificationsent",
            where=f"NEW.schedule_id = {refused.pk}",
            data_error=True,
        )
        # when
        errors: list[str] = []
        with django_capture_on_commit_callbacks() as enqueued:
            claimed = notifications_check_missed(now=now, errors=errors)
        # then the other two are told in the same pass, and the refused one's error is kept
        assert {s.schedule_id for s in claimed} == {schedules[1].pk, schedules[2].pk}
        assert len(enqueued) == 2
        [error] = errors
        assert error.startswith(f"missed-run event of schedule {refused.pk}: DataError: ")


@pytest.mark.django_db
class TestSending:
    def claimed(self, capture, job: BatchJob, status=ExecutionStatus.FAILED) -> NotificationSent:
        execution = finished(job, status)
        with capture():
            [sent] = notifications_execution_ended(execution_id=execution.pk, status=status)
        return sent

    def test_webhook_posts_json_about_the_execution(
        self, httpserver, django_capture_on_commit_callbacks
    ):
        httpserver.expect_oneshot_request("/hook", method="POST").respond_with_data("ok")
        job = handler_job("noop", name="nightly-import")
        subscribe(job, "webhook", httpserver.url_for("/hook"))
        sent = self.claimed(django_capture_on_commit_callbacks, job)

        assert notification_deliver(sent_id=sent.pk) == NotificationStatus.SENT

        [(request, _)] = httpserver.log
        body = request.get_json()
        assert request.headers["Content-Type"] == "application/json"
        assert body["event"] == "failure" and body["job"]["name"] == "nightly-import"
        assert body["execution"]["id"] == sent.execution_id
        assert (
            body["execution"]["status"] == "FAILED"
            and "RuntimeError: boom" in body["execution"]["error"]
        )
        assert "nightly-import" in body["text"] and "RuntimeError: boom" in body["text"]
        sent.refresh_from_db()
        assert sent.status == NotificationStatus.SENT and sent.sent_at and not sent.error

    def test_slack_gets_a_text_message(self, httpserver, django_capture_on_commit_callbacks):
        httpserver.expect_oneshot_request("/slack", method="POST").respond_with_data("ok")
        job = handler_job("noop", name="billing")
        subscribe(job, "slack", httpserver.url_for("/slack"))
        sent = self.claimed(django_capture_on_commit_callbacks, job)

        notification_deliver(sent_id=sent.pk)

        body = json.loads(httpserver.log[0][0].get_data())
        assert list(body) == ["text"]
        assert body["text"].startswith(f"Job billing: execution #{sent.execution_id} failed")

    def test_email_goes_through_djangos_email_backend(
        self, mailoutbox, django_capture_on_commit_callbacks
    ):
        job = handler_job("noop", name="payroll")
        subscribe(job, "email", "ops@example.com; oncall@example.com")
        sent = self.claimed(django_capture_on_commit_callbacks, job)

        assert notification_deliver(sent_id=sent.pk) == NotificationStatus.SENT

        [mail] = mailoutbox
        assert mail.to == ["ops@example.com", "oncall@example.com"]
        assert mail.subject.startswith("[batchjobs] Job payroll: execution #")
        assert "RuntimeError: boom" in mail.body

    def test_a_missed_run_message_says_how_late(
        self, httpserver, django_capture_on_commit_callbacks
    ):
        httpserver.expect_oneshot_request("/hook").respond_with_data("ok")
        job = handler_job("noop", name="hourly")
        subscribe(job, "webhook", httpserver.url_for("/hook"), on_missed=True)
        schedule = schedule_create(job=job, kind="interval", interval_every=1)
        BatchSchedule.objects.filter(pk=schedule.pk).update(
            next_fire_at=database_now() - timedelta(minutes=30)
        )
        with django_capture_on_commit_callbacks():
            [sent] = notifications_check_missed()

        notification_deliver(sent_id=sent.pk)

        body = httpserver.log[0][0].get_json()
        assert body["event"] == "missed" and body["schedule"]["id"] == schedule.pk
        assert "has not happened" in body["text"] and "is beat running?" in body["text"]

    def test_a_missed_run_of_a_set_aside_schedule_says_why(
        self, mailoutbox, django_capture_on_commit_callbacks
    ):
        job = handler_job("noop", name="hourly")
        subscribe(job, "email", "ops@example.com", on_missed=True)
        schedule = schedule_create(job=job, kind="interval", interval_every=1)
        BatchSchedule.objects.filter(pk=schedule.pk).update(
            next_fire_at=database_now() - timedelta(minutes=30),
            set_aside_at=database_now(),
            set_aside_reason="ZoneInfoNotFoundError: 'No time zone found with key Nowhere/Land'",
        )
        with django_capture_on_commit_callbacks():
            [sent] = notifications_check_missed()

        assert notification_deliver(sent_id=sent.pk) == NotificationStatus.SENT

        [mail] = mailoutbox
        assert "beat set its schedule aside" in mail.subject
        assert "Set aside: ZoneInfoNotFoundError: 'No time zone found" in mail.body
        assert "Fix and save it to fire again." in mail.body

    @pytest.mark.parametrize("answer", ["status 500", "no server"])
    def test_a_failing_channel_is_recorded_and_never_raises(
        self, answer, httpserver, django_capture_on_commit_callbacks
    ):
        if answer == "status 500":
            httpserver.expect_request("/hook").respond_with_data("down", status=500)
            url = httpserver.url_for("/hook")
        else:
            url = f"http://127.0.0.1:{closed_port()}/hook"
        job = handler_job("noop")
        subscribe(job, "webhook", url)
        sent = self.claimed(django_capture_on_commit_callbacks, job)

        assert notification_deliver(sent_id=sent.pk) == NotificationStatus.FAILED

        sent.refresh_from_db()
        assert sent.status == NotificationStatus.FAILED and sent.sent_at is not None
        expected = "HTTP 500: down" if answer == "status 500" else "ConnectionError"
        assert expected in sent.error

    def test_a_redelivered_message_sends_nothing_twice(
        self, httpserver, django_capture_on_commit_callbacks
    ):
        httpserver.expect_request("/hook").respond_with_data("ok")
        job = handler_job("noop")
        subscribe(job, "webhook", httpserver.url_for("/hook"))
        sent = self.claimed(django_capture_on_commit_callbacks, job)

        first = notification_deliver(sent_id=sent.pk)
        second = notification_deliver(sent_id=sent.pk)

        assert (first, second) == (NotificationStatus.SENT, None)
        assert len(httpserver.log) == 1

    def test_an_event_whose_message_was_lost_is_enqueued_again(
        self, django_capture_on_commit_callbacks
    ):
        job = handler_job("noop")
        subscribe(job, "email", "ops@example.com")
        lost = self.claimed(django_capture_on_commit_callbacks, job)
        fresh = self.claimed(django_capture_on_commit_callbacks, job)
        NotificationSent.objects.filter(pk=lost.pk).update(
            created_at=database_now() - timedelta(minutes=5)
        )

        assert notifications_relay_pending() == 1  # the fresh one may still be on its way
        assert fresh.status == NotificationStatus.PENDING


# --- through a real worker -------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_worker_sends_failure_then_recovered_and_a_failing_hook_never_fails_the_job(
    worker, httpserver
):
    # given a webhook that accepts the first message and answers 500 to the next ones
    answers = iter([Response("ok", 200)])
    httpserver.expect_request("/hook", method="POST").respond_with_handler(
        lambda request: next(answers, Response("down", 500))
    )
    job = handler_job("fail", max_attempts=1, params={"retryable": False, "message": "boom"})
    subscribe(job, "webhook", httpserver.url_for("/hook"))

    # when a run fails, and the next one succeeds
    failed = start(job)
    wait_until(lambda: BatchLog.objects.filter(pk=failed.pk, status="FAILED").exists(), timeout=30)
    told = wait_until(
        lambda: NotificationSent.objects.filter(execution=failed, status="SENT").first(),
        timeout=30,
        message="the failure was not sent",
    )
    succeeded = start(job, succeed_on_attempt=1)
    recovered = wait_until(
        lambda: NotificationSent.objects.filter(
            execution_id=succeeded.pk, status__in=["SENT", "FAILED"]
        ).first(),
        timeout=30,
        message="the recovery was not attempted",
    )

    # then the failure went out, with the error
    assert told.event == "failure"
    body = httpserver.log[0][0].get_json()
    assert body["event"] == "failure" and body["execution"]["id"] == failed.pk
    assert "boom" in body["execution"]["error"]
    # and the hook's 500 is on the notification, while the run stands COMPLETED
    assert (recovered.event, recovered.status) == ("recovered", "FAILED")
    assert "HTTP 500" in recovered.error
    succeeded.refresh_from_db()
    assert succeeded.status == ExecutionStatus.COMPLETED
    assert NotificationSent.objects.count() == 2  # each event once
