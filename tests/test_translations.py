"""Every name and help text of the models, and the messages of bad input, read in Korean under
Korean, and in English under English (the English the pages and tests already know).

They read the project's catalogue (locale/ko), as a deployment does."""

import pytest
from django.apps import apps
from django.utils import translation

from batchjobs.errors import InvalidInput
from batchjobs.execution.limits import (
    RATE_WAIT,
    SLOT_WAIT,
    Limit,
    held_reason_shown,
    rate_reason,
    running_reason,
)
from batchjobs.models import BatchJob, BatchSchedule
from batchjobs.models.job import HttpMethod
from batchjobs.services.jobs import job_validate
from batchjobs.services.schedules import schedule_validate
from batchjobs.services.validation import instance_validate

# Words a Korean operator reads as they are.
SAME_IN_KOREAN = {"ID"}
# HTTP methods are protocol tokens: their labels stay as they are in every language.
UNTRANSLATED_CHOICES = [HttpMethod.choices]


def _labels():
    """(where, text) for every name, help text and choice label of the app's models."""
    for model in apps.get_app_config("batchjobs").get_models():
        opts = model._meta
        yield f"{model.__name__} verbose_name", opts.verbose_name
        yield f"{model.__name__} verbose_name_plural", opts.verbose_name_plural
        for field in opts.get_fields():
            if not field.concrete and (not field.many_to_many or field.auto_created):
                continue  # a reverse relation: named on the model that holds the field
            where = f"{model.__name__}.{field.name}"
            yield f"{where} verbose_name", field.verbose_name
            if field.help_text:
                yield f"{where} help_text", field.help_text
            if field.choices and field.choices not in UNTRANSLATED_CHOICES:
                for value, label in field.choices:
                    yield f"{where} choice {value!r}", label


def test_every_model_name_help_text_and_choice_reads_in_korean():
    untranslated = []
    for where, text in _labels():
        with translation.override("en"):
            english = str(text)
        with translation.override("ko"):
            korean = str(text)
        if korean == english and english not in SAME_IN_KOREAN:
            untranslated.append(f"{where}: {english!r}")
    assert untranslated == [], "\n".join(untranslated)


def test_the_english_labels_are_the_ones_django_derived():
    # A field's label is its name, spaced, as Django called it before the label was marked; a
    # job is a "job" as the console's menu calls it (Django derived "batch job").
    with translation.override("en"):
        assert str(BatchJob._meta.get_field("http_url").verbose_name) == "http url"
        assert str(BatchJob._meta.verbose_name_plural) == "jobs"
    with translation.override("ko"):
        assert str(BatchJob._meta.get_field("http_url").verbose_name) == "HTTP URL"
        assert str(BatchJob._meta.verbose_name_plural) == "작업"


def _field_errors(instance, validate) -> dict[str, list[str]]:
    """The messages by field of a save through the services' full_clean."""
    with pytest.raises(InvalidInput) as caught:
        instance_validate(instance, validate=validate)
    return caught.value.field_errors


@pytest.fixture
def job(db):
    return BatchJob.objects.create(name="nightly", kind="handler", handler_name="noop")


def _schedule_errors(job, **fields) -> dict[str, list[str]]:
    schedule = BatchSchedule(job=job, **fields)
    return _field_errors(schedule, lambda: schedule_validate(schedule=schedule))


@pytest.mark.parametrize(
    ("fields", "field", "english", "korean"),
    [
        (
            {"kind": "cron", "cron_expression": "* * * *"},
            "cron_expression",
            "A cron expression has 5 fields (or 6 with seconds first), not 4.",
            "cron 표현식의 필드는 5개(또는 초를 맨 앞에 둔 6개)여야 합니다. "
            "입력한 필드는 4개입니다.",
        ),
        (
            {"kind": "cron", "cron_expression": "0 0 30,31 2 *"},
            "cron_expression",
            "Never fires: days 30, 31 do not occur in February.",
            "실행되지 않습니다: 2월에는 30, 31일이 없습니다.",
        ),
        (
            {"kind": "cron", "cron_expression": "0 3 * * *", "timezone": "Mars/Olympus"},
            "timezone",
            "Unknown time zone 'Mars/Olympus'; use an IANA name such as Europe/Berlin.",
            "알 수 없는 시간대 'Mars/Olympus'입니다. Asia/Seoul 같은 IANA 이름을 쓰세요.",
        ),
        (
            {"kind": "interval", "interval_every": 5, "jitter_seconds": 86_401},
            "jitter_seconds",
            "Must be between 0 and 86,400 seconds (1 days).",
            "0초에서 86,400초(1일) 사이여야 합니다.",
        ),
    ],
    ids=["cron-fields", "cron-never-fires", "zone", "bound"],
)
def test_a_bad_schedule_is_refused_in_the_operators_language(job, fields, field, english, korean):
    with translation.override("en"):
        assert english in _schedule_errors(job, **fields)[field]
    with translation.override("ko"):
        assert korean in _schedule_errors(job, **fields)[field]


@pytest.mark.django_db
def test_a_bad_url_is_refused_in_the_operators_language():
    def errors() -> list[str]:
        job = BatchJob(name="probe", kind="http", http_url="ftp://example.com/")
        return _field_errors(job, lambda: job_validate(job=job))["http_url"]

    with translation.override("en"):
        assert errors() == ["scheme must be http or https, not 'ftp'"]
    with translation.override("ko"):
        assert errors() == ["스킴은 'ftp'이(가) 아니라 http 또는 https여야 합니다"]


@pytest.mark.parametrize(
    ("stored", "korean"),
    [
        (
            running_reason(Limit(key="job:12", max_running=2, max_per_second=None), running=2),
            "슬롯 대기 중: 작업 #12에서 2개 실행 중 (동시 실행 제한 2개)",
        ),
        (
            rate_reason(Limit(key="host:example.com", max_running=None, max_per_second=50)),
            "호출 속도 대기 중: 호스트 example.com은(는) 초당 50회 호출까지 허용합니다",
        ),
    ],
    ids=["slot", "rate"],
)
def test_a_held_reason_is_stored_in_english_and_shown_in_the_readers_language(stored, korean):
    # Stored in English whatever the language: the wake-ups match its start.
    assert stored.startswith((SLOT_WAIT, RATE_WAIT))
    with translation.override("en"):
        assert held_reason_shown(stored) == stored
    with translation.override("ko"):
        assert held_reason_shown(stored) == korean
