"""Login lockout: after BATCHJOBS_LOGIN_MAX_FAILURES failed logins for one username (from any
address), that username is refused for BATCHJOBS_LOGIN_LOCKOUT_SECONDS, even with the right
password. Counted in the shared cache (Redis), so every web process sees the same count."""

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver


def _key(username: str) -> str:
    return f"batchjobs:login-failures:{username.strip().lower()}"


def login_locked(username: str) -> bool:
    return cache.get(_key(username), 0) >= settings.BATCHJOBS_LOGIN_MAX_FAILURES


class LockoutModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        name = username or kwargs.get(self._username_field(), "")
        if name and login_locked(name):
            # PermissionDenied stops Django from trying the password at all.
            raise PermissionDenied("too many failed logins; try again later")
        return super().authenticate(request, username=username, password=password, **kwargs)

    @staticmethod
    def _username_field() -> str:
        from django.contrib.auth import get_user_model

        return get_user_model().USERNAME_FIELD


@receiver(user_login_failed)
def _count_failure(sender, credentials, **kwargs) -> None:
    username = credentials.get("username")
    if not username:
        return
    key = _key(username)
    cache.add(key, 0, timeout=settings.BATCHJOBS_LOGIN_LOCKOUT_SECONDS)
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=settings.BATCHJOBS_LOGIN_LOCKOUT_SECONDS)


@receiver(user_logged_in)
def _reset_failures(sender, user, **kwargs) -> None:
    cache.delete(_key(user.get_username()))
