"""Each operator's console preferences: the time zone the console shows times in.

An operator who chose none sees the deployment's zone, BATCHJOBS_TIME_ZONE."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.exceptions import ValidationError as DjangoValidationError

from batchjobs.models import UserPreference
from batchjobs.rules.zone import timezone_errors

from .validation import instance_validate


def default_time_zone() -> str:
    """The deployment's display zone (BATCHJOBS_TIME_ZONE), checked: a misspelt zone stops
    the web process at start-up with the reason, rather than showing wrong times."""
    name = settings.BATCHJOBS_TIME_ZONE
    problems = timezone_errors(name)
    if problems:
        raise ImproperlyConfigured(f"BATCHJOBS_TIME_ZONE={name!r}: {' '.join(problems)}")
    return name


def user_time_zone(*, user) -> str:
    """The zone the console shows times in for `user`: their choice, else the deployment's.
    One query for a signed-in user, none for an anonymous one."""
    if user is None or not user.is_authenticated:
        return default_time_zone()
    chosen = (
        UserPreference.objects.filter(user_id=user.pk).values_list("time_zone", flat=True).first()
    )
    # A zone that has left the tz database since it was chosen falls back to the default.
    if chosen is None or timezone_errors(chosen):
        return default_time_zone()
    return chosen


def preference_validate(*, preference: UserPreference) -> None:
    """The rules of a preference, run by preference_set and by the console's form alike
    (services/validation.py). Raises Django's ValidationError by field."""
    problems = timezone_errors(preference.time_zone)
    if problems:
        raise DjangoValidationError({"time_zone": problems})


def preference_set(*, user, time_zone: str) -> UserPreference:
    """Choose the zone the console shows times in for `user`. A name the tz database does not
    know is refused (InvalidInput naming time_zone, with the closest real zones); nothing is
    saved."""
    preference = UserPreference.objects.filter(user_id=user.pk).first() or UserPreference(user=user)
    preference.time_zone = time_zone
    instance_validate(preference, validate=lambda: preference_validate(preference=preference))
    preference.save()
    return preference
