import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext

from batchjobs.errors import InvalidInput
from batchjobs.models import UserPreference
from batchjobs.rules.zone import timezone_errors
from batchjobs.services.preferences import (
    default_time_zone,
    preference_set,
    user_time_zone,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("operator", password="x", is_staff=True)


def test_a_zone_is_chosen_once_and_changed_in_place(user):
    first = preference_set(user=user, time_zone="Asia/Seoul")
    second = preference_set(user=user, time_zone="Europe/Berlin")

    assert first.pk == second.pk
    assert list(UserPreference.objects.values_list("user_id", "time_zone")) == [
        (user.pk, "Europe/Berlin")
    ]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Asia/Seul", "Did you mean Asia/Seoul?"),
        ("asia/seoul", "Did you mean Asia/Seoul?"),
        ("Seoul", "Did you mean Asia/Seoul?"),
        ("Mars/Olympus", "Unknown time zone 'Mars/Olympus'"),
        ("", "Name an IANA time zone"),
        ("../../etc/passwd", "Unknown time zone"),
    ],
)
def test_a_zone_the_tz_database_does_not_know_is_refused_naming_time_zone(user, name, message):
    preference_set(user=user, time_zone="Europe/Berlin")

    with pytest.raises(InvalidInput) as refused:
        preference_set(user=user, time_zone=name)

    assert list(refused.value.field_errors) == ["time_zone"]
    assert any(message in error for error in refused.value.field_errors["time_zone"])
    assert UserPreference.objects.get().time_zone == "Europe/Berlin"  # nothing half-saved


def test_a_typo_is_told_only_the_close_real_zones():
    problems = timezone_errors("Europe/Berln")

    assert problems[-1] == "Did you mean Europe/Berlin?"
    assert timezone_errors("Asia/Seoul") == []


def test_an_operator_who_chose_nothing_gets_the_deployments_zone(user, settings):
    settings.BATCHJOBS_TIME_ZONE = "Asia/Seoul"

    with CaptureQueriesContext(connection) as queries:
        chosen_nothing = user_time_zone(user=user)
    preference_set(user=user, time_zone="Europe/Berlin")

    assert chosen_nothing == "Asia/Seoul" and len(queries) == 1
    assert user_time_zone(user=user) == "Europe/Berlin"
    assert user_time_zone(user=None) == "Asia/Seoul"


def test_a_zone_chosen_then_gone_from_the_tz_database_falls_back_to_the_default(user):
    # stored behind validation's back, as a zone renamed by a tz database update would be
    UserPreference.objects.create(user=user, time_zone="Asia/Nowhere")

    assert user_time_zone(user=user) == "UTC"


def test_the_deployments_zone_is_checked(settings):
    settings.BATCHJOBS_TIME_ZONE = "Asia/Seul"

    with pytest.raises(ImproperlyConfigured, match=r"'Asia/Seul'.*Did you mean Asia/Seoul\?"):
        default_time_zone()
