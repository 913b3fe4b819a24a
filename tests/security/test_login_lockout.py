import uuid

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User

from batchjobs.errors import Unavailable


def fresh_name() -> str:
    # Counts live in the shared Redis cache and outlive a test run: a new name each time.
    return f"ops-{uuid.uuid4().hex[:8]}"


@pytest.mark.django_db
def test_the_admin_login_locks_after_repeated_failures(client, settings):
    settings.BATCHJOBS_LOGIN_MAX_FAILURES = 3
    ops = fresh_name()
    User.objects.create_superuser(ops, "ops@example.com", "right-password-123")
    for _ in range(3):
        response = client.post("/admin/login/", {"username": ops, "password": "wrong"})
        assert response.status_code == 200 and not response.wsgi_request.user.is_authenticated
    # the right password is refused now
    response = client.post("/admin/login/", {"username": ops, "password": "right-password-123"})
    assert not response.wsgi_request.user.is_authenticated
    # another user is not affected
    other = fresh_name()
    User.objects.create_superuser(other, "o@example.com", "right-password-456")
    response = client.post("/admin/login/", {"username": other, "password": "right-password-456"})
    assert response.status_code == 302


@pytest.mark.django_db
def test_a_success_before_the_limit_resets_the_count(client, settings):
    settings.BATCHJOBS_LOGIN_MAX_FAILURES = 3
    ops = fresh_name()
    User.objects.create_superuser(ops, "ops@example.com", "right-password-123")
    for _ in range(2):
        client.post("/admin/login/", {"username": ops, "password": "wrong"})
    assert (
        client.post(
            "/admin/login/", {"username": ops, "password": "right-password-123"}
        ).status_code
        == 302
    )
    client.logout()
    for _ in range(2):
        client.post("/admin/login/", {"username": ops, "password": "wrong"})
    assert (
        client.post(
            "/admin/login/", {"username": ops, "password": "right-password-123"}
        ).status_code
        == 302
    )


@pytest.mark.django_db
def test_no_login_is_let_in_while_the_lockout_cannot_be_checked(client, cache_redis):
    ops = fresh_name()
    User.objects.create_superuser(ops, "ops@example.com", "right-password-123")
    cache_redis.stop()

    right = client.post("/admin/login/", {"username": ops, "password": "right-password-123"})
    wrong = client.post("/admin/login/", {"username": ops, "password": "wrong"})

    for response in (right, wrong):
        assert response.status_code == 200
        assert not response.wsgi_request.user.is_authenticated
        assert "Logins are refused for now: login lockout store unavailable" in (
            response.content.decode()
        )
    with pytest.raises(Unavailable):
        authenticate(username=ops, password="right-password-123")
