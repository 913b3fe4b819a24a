"""Helpers for driving the admin through Django's test client, as a browser would."""

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

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
        **NO_SCHEDULES,
    }
    data.update(fields)
    return {name: value for name, value in data.items() if value is not False}


def form_errors(response) -> dict[str, list[str]]:
    """The errors of the admin page's main form, by field."""
    return response.context["adminform"].form.errors


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
