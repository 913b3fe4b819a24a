"""One ranking of zones for what is typed (rules.zone.zone_suggestions): the console's picker
and every check of a zone's name (schedules, preferences, the API, the command line) suggest
the same real zones for a typo."""

import pytest
from django.utils import translation

from batchjobs.errors import InvalidInput
from batchjobs.rules.template import TemplateError, template_parse
from batchjobs.rules.zone import MAX_SUGGESTIONS, timezone_errors, zone_suggestions
from batchjobs.services.preferences import preference_set
from batchjobs.services.schedules import schedule_create
from tests.support.factories import handler_job


@pytest.mark.parametrize(
    ("typed", "first"),
    [
        ("Asia/Seul", "Asia/Seoul"),
        ("asia/seoul", "Asia/Seoul"),
        ("Seoul", "Asia/Seoul"),
        ("Asia/Se", "Asia/Seoul"),
        ("new york", "America/New_York"),
        ("Europe/Berln", "Europe/Berlin"),
        ("kolkatta", "Asia/Kolkata"),
        ("UTC", "UTC"),
    ],
)
def test_what_is_typed_finds_the_zone_first(typed, first):
    assert zone_suggestions(typed)[0] == first


def test_a_typo_is_told_only_the_close_zones_and_nonsense_none():
    assert zone_suggestions("Asia/Seul", typos_only=True) == ["Asia/Seoul"]
    assert zone_suggestions("Europe/Berln", typos_only=True) == ["Europe/Berlin"]
    assert zone_suggestions("Mars/Olympus") == []
    assert zone_suggestions("../../etc/passwd") == []
    assert zone_suggestions("") == [] and zone_suggestions("x" * 100_000) == []


def test_the_list_is_bounded():
    assert len(zone_suggestions("a", limit=10_000)) == MAX_SUGGESTIONS
    assert len(zone_suggestions("America/", limit=5)) == 5


def test_an_unknown_zone_is_refused_with_the_close_real_one_not_an_example():
    assert timezone_errors("Asia/Seul") == [
        "Unknown time zone 'Asia/Seul'.",
        "Did you mean Asia/Seoul?",
    ]
    assert timezone_errors("Asia") == [
        "Unknown time zone 'Asia'; use an IANA name such as Europe/Berlin."
    ]
    assert timezone_errors("Asia/Seoul") == []
    with translation.override("ko"):
        korean = timezone_errors("Asia/Seul")
    assert korean == ["알 수 없는 시간대 'Asia/Seul'입니다.", "Asia/Seoul을(를) 말씀하신 건가요?"]


@pytest.mark.django_db
def test_schedules_and_preferences_suggest_the_same_zone(django_user_model):
    user = django_user_model.objects.create_user("zones", password="x")

    with pytest.raises(InvalidInput) as schedule:
        schedule_create(
            job=handler_job("noop"), kind="cron", cron_expression="0 2 * * *", timezone="Asia/Seul"
        )
    with pytest.raises(InvalidInput) as preference:
        preference_set(user=user, time_zone="Asia/Seul")

    assert schedule.value.field_errors["timezone"][-1] == "Did you mean Asia/Seoul?"
    assert preference.value.field_errors["time_zone"][-1] == "Did you mean Asia/Seoul?"


def test_a_template_zone_suggests_the_same_zone():
    with pytest.raises(TemplateError, match="did you mean Asia/Seoul"):
        template_parse('{{ logical_time | tz:"Asia/Seul" }}')
