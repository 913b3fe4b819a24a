import pytest
from django.contrib.auth import get_user_model

from batchjobs.services.accounts import admin_user_ensure

pytestmark = pytest.mark.django_db


def test_admin_user_ensure_creates_a_superuser_once_and_keeps_its_password():
    assert admin_user_ensure(username="admin", password="first-secret") is True
    assert admin_user_ensure(username="admin", password="second-secret") is False

    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert admin.check_password("first-secret")
