"""Login lockout: after BATCHJOBS_LOGIN_MAX_FAILURES failed logins for one username (from any
address), that username is refused for BATCHJOBS_LOGIN_LOCKOUT_SECONDS, even with the right
password. Counted in the shared cache (Redis), so every web process sees the same count.

The lockout fails closed: while the cache cannot be reached no login is checked, so none is let
in. `authenticate()` raises Unavailable and the admin's login form says why."""

import logging

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.dispatch import receiver
from django.utils.translation import gettext as _

from batchjobs.errors import Unavailable
from batchjobs.shared_cache import CACHE_UNREACHABLE_ERRORS, shared_cache_needed

logger = logging.getLogger(__name__)

LOGIN_LOCKOUT = "login lockout"


def _key(username: str) -> str:
    return f"batchjobs:login-failures:{username.strip().lower()}"


def login_locked(username: str) -> bool:
    with shared_cache_needed(LOGIN_LOCKOUT):
        return cache.get(_key(username), 0) >= settings.BATCHJOBS_LOGIN_MAX_FAILURES


class LockoutModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        name = username or kwargs.get(self._username_field(), "")
        # Unavailable is not PermissionDenied on purpose: it reaches the caller, who can say
        # why the login was refused.
        if name and login_locked(name):
            # PermissionDenied stops Django from trying the password at all.
            raise PermissionDenied(_("too many failed logins; try again later"))
        return super().authenticate(request, username=username, password=password, **kwargs)

    @staticmethod
    def _username_field() -> str:
        from django.contrib.auth import get_user_model

        return get_user_model().USERNAME_FIELD


class LockoutAdminLoginForm(AdminAuthenticationForm):
    """The admin's login form (admin.site.login_form): a lockout that cannot be checked refuses
    the login with a message that says so, not as a wrong password."""

    def clean(self):
        try:
            return super().clean()
        except Unavailable as exc:
            raise ValidationError(
                _("Logins are refused for now: %(reason)s"),
                code="unavailable",
                params={"reason": exc},
            ) from exc


@receiver(user_login_failed)
def _count_failure(sender, credentials, **kwargs) -> None:
    username = credentials.get("username")
    if not username:
        return
    key = _key(username)
    # An uncounted failure would let guessing go on unchecked: refuse instead (Unavailable).
    with shared_cache_needed(LOGIN_LOCKOUT):
        cache.add(key, 0, timeout=settings.BATCHJOBS_LOGIN_LOCKOUT_SECONDS)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=settings.BATCHJOBS_LOGIN_LOCKOUT_SECONDS)


@receiver(user_logged_in)
def _reset_failures(sender, user, **kwargs) -> None:
    try:
        cache.delete(_key(user.get_username()))
    except CACHE_UNREACHABLE_ERRORS:
        # The lockout was checked moments ago and the password was right; failures left
        # counted only expire later, so the login goes on.
        logger.warning("could not reset the failed-login count of %s", user.get_username())
