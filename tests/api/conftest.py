"""API test helpers: users for each role of the permission matrix, clients that authenticate as
programs do (a token), and the settings the API needs."""

import uuid
from collections.abc import Callable

import pytest
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

READER = ("view_batchjob", "view_batchschedule", "view_batchlog")
OPERATOR = (
    *READER,
    "add_batchjob", "change_batchjob", "run_batchjob", "add_batchschedule", "change_batchschedule",
)  # fmt: skip
ROLES = {"reader": READER, "operator": OPERATOR}


@pytest.fixture(autouse=True)
def api_settings(settings):
    # Throttle counters live in the cache (Redis, shared with the broker): each test gets a
    # key prefix of its own, so it starts with none spent and no queue is flushed.
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}
    }


@pytest.fixture
def make_user(django_user_model) -> Callable:
    """A user for a role: "reader" (view), "operator" (view, add, change, run), "admin"."""

    def make(role: str):
        existing = django_user_model.objects.filter(username=f"{role}-user").first()
        if existing is not None:
            return existing
        if role == "admin":
            return django_user_model.objects.create_superuser(username="admin-user", password="x")
        user = django_user_model.objects.create_user(username=f"{role}-user", password="x")
        user.user_permissions.set(
            Permission.objects.filter(content_type__app_label="batchjobs", codename__in=ROLES[role])
        )
        return user

    return make


@pytest.fixture
def api(make_user) -> Callable[[str], APIClient]:
    """A client that authenticates with the role's token, as a program would ("anonymous":
    none)."""

    def client_for(role: str = "admin") -> APIClient:
        client = APIClient()
        if role != "anonymous":
            token, _ = Token.objects.get_or_create(user=make_user(role))
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return client_for
