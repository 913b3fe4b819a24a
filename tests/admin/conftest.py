"""Clients for driving the admin as a browser would (the forms they submit are in
tests/support/admin_forms.py)."""

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Permission
from django.test import Client


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
