"""User accounts the operator needs before anything else (the quick start's admin user)."""

from django.contrib.auth import get_user_model


def admin_user_ensure(*, username: str, password: str, email: str = "") -> bool:
    """Create a superuser unless a user of that name exists; True if it was created.

    An existing user keeps its password: this never resets what someone may have changed.
    """
    user_model = get_user_model()
    if user_model.objects.filter(username=username).exists():
        return False
    user_model.objects.create_superuser(username=username, email=email, password=password)
    return True
