"""Submissions of the admin's forms, as a browser sends them, and the errors they come back with."""

from typing import Any

# The inline formset of schedules on the job form is prefixed by the relation's name.
NO_SCHEDULES = {
    "schedules-TOTAL_FORMS": "0",
    "schedules-INITIAL_FORMS": "0",
    "schedules-MIN_NUM_FORMS": "0",
    "schedules-MAX_NUM_FORMS": "1000",
    # ... and so is the inline formset of notifications.
    "notifications-TOTAL_FORMS": "0",
    "notifications-INITIAL_FORMS": "0",
    "notifications-MIN_NUM_FORMS": "0",
    "notifications-MAX_NUM_FORMS": "1000",
    # ... and so is the inline formset of upstream jobs (job dependencies).
    "upstream_edges-TOTAL_FORMS": "0",
    "upstream_edges-INITIAL_FORMS": "0",
    "upstream_edges-MIN_NUM_FORMS": "0",
    "upstream_edges-MAX_NUM_FORMS": "1000",
}


def job_form_data(**fields: Any) -> dict[str, Any]:
    """A complete, valid submission of the job form (an HTTP job); `fields` override it.
    A field set to False is left out, as a browser leaves out an unchecked checkbox."""
    data = {
        "name": "nightly-report",
        "description": "",
        "kind": "http",
        "enabled": "on",
        "http_method": "GET",
        "http_url": "http://127.0.0.1:8000/demo/ping",
        "http_headers": "[]",
        "http_body": "",
        "http_expected_status": "200-299",
        "http_assertion_kind": "",
        "http_assertion": "",
        "http_assertion_value": "",
        "handler_name": "",
        "params": "{}",
        "timeout_seconds": "60",
        "max_attempts": "3",
        "retry_backoff_seconds": "10",
        "retry_backoff_max_seconds": "600",
        "retry_jitter": "on",
        "overlap_policy": "allow",
        "queue": "batchjobs",
        "priority": "5",
        "upstream_mode": "any",
        **NO_SCHEDULES,
    }
    data.update(fields)
    return {name: value for name, value in data.items() if value is not False}


def form_errors(response) -> dict[str, list[str]]:
    """The errors of the admin page's main form, by field."""
    return response.context["adminform"].form.errors


def schedule_form_data(job: Any, **fields: Any) -> dict[str, Any]:
    """A complete, valid submission of the schedule form (a cron schedule)."""
    data = {
        "job": job.pk,
        "description": "",
        "kind": "cron",
        "run_at_0": "",
        "run_at_1": "",
        "interval_every": "",
        "interval_unit": "minutes",
        "cron_expression": "30 2 * * *",
        "timezone": "Europe/Berlin",
        "jitter_seconds": "0",
        "start_at_0": "",
        "start_at_1": "",
        "end_at_0": "",
        "end_at_1": "",
        "max_runs": "",
        "misfire_policy": "fire_once",
        "misfire_grace_seconds": "60",
        "catch_up_window_seconds": "3600",
        "catch_up_max": "100",
        "dst_gap_policy": "skip",
        "dst_fold_policy": "first",
        "calendar_policy": "skip",
        "params": "",
    }
    return data | fields
