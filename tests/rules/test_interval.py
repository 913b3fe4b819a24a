"""An interval in words, with the plural each language needs ("every 1 minutes" was shown)."""

import pytest
from django.utils import translation

from batchjobs.models import BatchSchedule
from batchjobs.rules.interval import interval_phrase


@pytest.mark.parametrize(
    ("every", "unit", "english", "korean"),
    [
        (1, "minutes", "every minute", "1분마다"),
        (5, "minutes", "every 5 minutes", "5분마다"),
        (1, "seconds", "every second", "1초마다"),
        (30, "seconds", "every 30 seconds", "30초마다"),
        (1, "hours", "every hour", "1시간마다"),
        (2, "hours", "every 2 hours", "2시간마다"),
        (1, "days", "every day", "1일마다"),
        (7, "days", "every 7 days", "7일마다"),
    ],
)
def test_an_interval_reads_with_its_plural_in_english_and_korean(every, unit, english, korean):
    with translation.override("en"):
        in_english = interval_phrase(every, unit)
    with translation.override("ko"):
        in_korean = interval_phrase(every, unit)

    assert (in_english, in_korean) == (english, korean)


def test_a_schedules_summary_says_every_minute():
    schedule = BatchSchedule(kind="interval", interval_every=1, interval_unit="minutes")

    with translation.override("en"):
        assert schedule.summary == "every minute"
