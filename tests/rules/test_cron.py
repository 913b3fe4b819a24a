"""A refused cron expression names the field and its range, in English and Korean, wherever
cron is checked (rules.cron.cron_errors: the admin, the API, the command line, import)."""

import pytest
from django.utils import translation

from batchjobs.errors import InvalidInput
from batchjobs.rules.cron import cron_errors
from batchjobs.services.schedules import schedule_create
from tests.support.factories import handler_job


@pytest.mark.parametrize(
    ("expression", "error"),
    [
        ("61 * * * *", "minute field: 61 is out of range 0–59."),
        ("0 24 * * *", "hour field: 24 is out of range 0–23."),
        ("0 0 0 * *", "day of month field: 0 is out of range 1–31."),
        ("0 0 1 13 *", "month field: 13 is out of range 1–12."),
        ("0 0 * * 8", "day of week field: 8 is out of range 0–7."),
        ("1-70 * * * *", "minute field: 70 is out of range 0–59."),
        ("0,15,99 * * * *", "minute field: 99 is out of range 0–59."),
        ("60 0 0 * * *", "second field: 60 is out of range 0–59."),
        ("0 0 * foo *", "month field: foo is neither a number from 1 to 12 nor a name."),
        ("*/0 * * * *", "minute field: the step '0' must be a number from 1 to 60."),
        ("x! * * * *", "minute field: 'x!' is not a value, range or step."),
    ],
)
def test_an_expression_out_of_range_is_refused_naming_the_field_and_its_range(expression, error):
    assert cron_errors(expression) == [error]


@pytest.mark.parametrize(
    "expression",
    ["0 2 * * *", "*/15 * * * *", "0 9-17 * * MON-FRI", "0 0 1 jan,jul *", "0 0 * * 7",
     "0 0 L * *", "0 0 * * 5#3", "0 0 ? * *", "30 0 2 * * *", "0 0 29 2 *"],
)  # fmt: skip
def test_expressions_that_fire_are_accepted(expression):
    assert cron_errors(expression) == []


def test_the_field_and_its_range_read_in_korean():
    with translation.override("ko"):
        errors = cron_errors("61 * * * *")

    assert errors == ["분 필드: 61은(는) 범위 0–59를 벗어났습니다."]


@pytest.mark.django_db
def test_the_services_refuse_with_the_same_words(django_user_model):
    with pytest.raises(InvalidInput) as refused:
        schedule_create(job=handler_job("noop"), kind="cron", cron_expression="61 * * * *")

    assert refused.value.field_errors == {
        "cron_expression": ["minute field: 61 is out of range 0–59."]
    }
