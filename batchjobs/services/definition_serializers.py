"""The jobs-as-code format's serializers: a job and a schedule as a person defines them, with
strict JSON types and no unknown fields. The definitions service reads and writes documents with
them; the API's serializers extend them, so a file is checked exactly as an API call is. They
check types and shapes only: every rule about the values is the services'."""

import math
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from batchjobs.models import BatchJob, BatchSchedule, Calendar, RunLimit
from batchjobs.secrets import headers_masked, headers_unmasked, secret_decrypt

NON_FIELD = "non_field_errors"


def field_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as {"field": [...], "field.sub": [...], "list[2]": [...]}."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            for name, messages in field_errors(
                value, f"{prefix}.{key}" if prefix else str(key)
            ).items():
                flat.setdefault(name, []).extend(messages)
        return flat
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return {prefix or NON_FIELD: [str(item) for item in detail]}
        flat = {}
        for index, item in enumerate(detail):
            if item:  # a list serializer reports {} for each valid item
                for name, messages in field_errors(item, f"{prefix}[{index}]").items():
                    flat.setdefault(name, []).extend(messages)
        return flat
    return {prefix or NON_FIELD: [str(detail)]}


# --- strict JSON types -----------------------------------------------------------------------
# DRF accepts 5 for a string, "5" for a number and "yes" for a boolean. A JSON API should not
# guess: the wrong type is a 400 that names the field.


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    default_error_messages = {"finite": _("Enter a finite number.")}

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        if isinstance(data, float) and not math.isfinite(data):
            self.fail("finite")
        return super().to_internal_value(data)


class BoundsJudgedByTheModel(serializers.Field):
    """A model's number: DRF copies the field's bound validators into min_value and max_value;
    they stay for the schema, but the model's validators judge the value at save, so the API
    refuses it with the admin's message."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.validators = [
            validator
            for validator in super().validators
            if not isinstance(validator, MinValueValidator | MaxValueValidator)
        ]


class ModelIntegerField(BoundsJudgedByTheModel, StrictIntegerField):
    pass


class ModelFloatField(BoundsJudgedByTheModel, StrictFloatField):
    pass


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class RejectUnknownFields(serializers.Serializer):
    """Refuse fields the serializer does not know: a typo must not be silently dropped.
    Read-only fields sent back are ignored, so the body of a GET can be edited and PUT back."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, Mapping) else []
        errors: dict[str, Any] = {name: [_("Unknown field.")] for name in unknown}
        try:
            values = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            detail = (
                exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
            )
            errors.update(detail)
        if errors:
            raise serializers.ValidationError(errors)
        return values


class StrictModelSerializer(RejectUnknownFields, serializers.ModelSerializer):
    """A ModelSerializer with strict JSON types that refuses unknown fields."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
        models.IntegerField: ModelIntegerField,
        models.PositiveIntegerField: ModelIntegerField,
        models.PositiveSmallIntegerField: ModelIntegerField,
        models.BigIntegerField: ModelIntegerField,
        models.FloatField: ModelFloatField,
        models.BooleanField: StrictBooleanField,
    }


class StrictSerializer(RejectUnknownFields, serializers.Serializer):
    """A request body of an operation: refuses unknown fields."""


# --- jobs ------------------------------------------------------------------------------------

JOB_DEFINITION_FIELDS = (
    "name", "description", "kind", "enabled",
    "http_method", "http_url", "http_headers", "http_body", "http_expected_status",
    "http_assertion_kind", "http_assertion", "http_assertion_value",
    "handler_name", "batch_job_name", "params",
    "timeout_seconds", "max_attempts", "retry_backoff_seconds", "retry_backoff_max_seconds",
    "retry_jitter", "retry_on_4xx", "overlap_policy", "queue", "max_running", "priority",
    "upstream_mode", "tags",
)  # fmt: skip


class HeaderSerializer(serializers.Serializer):
    """For the schema: one entry of http_headers (the job service checks the entries)."""

    name = serializers.CharField()
    value = serializers.CharField(
        help_text=_("Shown as •••••• when secret; send •••••• to keep it.")
    )
    secret = serializers.BooleanField(required=False, default=False)


@extend_schema_field(HeaderSerializer(many=True))
class HeadersField(serializers.ListField):
    child = serializers.DictField()


@extend_schema_field({"type": "array", "items": {"type": "string"}})
class TagNamesField(serializers.Field):
    """A job's tags by name, sorted; a list of strings on input (the job service checks the
    names and creates the tags missing)."""

    default_error_messages = {"invalid": _("Must be a list of tag names.")}

    def to_internal_value(self, data: Any) -> list[str]:
        if not isinstance(data, list) or not all(isinstance(name, str) for name in data):
            self.fail("invalid")
        return list(data)

    def to_representation(self, value: Any) -> list[str]:
        return sorted(tag.name for tag in value.all())


class JobDefinitionSerializer(StrictModelSerializer):
    """A job as defined by a person: what export writes and import reads.

    Secret header values are masked on output unless the context says `include_secrets`; a
    masked value sent back stands for the stored one (batchjobs.secrets)."""

    http_headers = HeadersField(
        required=False, help_text=BatchJob._meta.get_field("http_headers").help_text
    )
    params = serializers.DictField(
        required=False, help_text=BatchJob._meta.get_field("params").help_text
    )
    tags = TagNamesField(
        required=False,
        help_text=_("The job's tags by name; tags not yet known are created. Left out: unchanged."),
    )

    class Meta:
        model = BatchJob
        fields: tuple[str, ...] = JOB_DEFINITION_FIELDS

    def validate_http_headers(self, value: list) -> list:
        stored = self.instance.http_headers if self.instance is not None else []
        try:
            return headers_unmasked(value, stored=stored)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc

    def to_representation(self, instance: BatchJob) -> dict:
        data = super().to_representation(instance)
        if self.context.get("include_secrets"):  # an export for another installation: plain
            data["http_headers"] = [
                {**header, "value": secret_decrypt(header["value"])}
                if header.get("secret")
                else header
                for header in instance.http_headers
            ]
        else:
            data["http_headers"] = headers_masked(instance.http_headers)
        return data


# --- schedules -------------------------------------------------------------------------------

SCHEDULE_DEFINITION_FIELDS = (
    "description", "kind", "run_at", "interval_every", "interval_unit", "cron_expression",
    "timezone", "start_at", "end_at", "max_runs", "paused", "misfire_policy",
    "misfire_grace_seconds", "catch_up_window_seconds", "catch_up_max", "dst_gap_policy",
    "dst_fold_policy", "jitter_seconds", "params", "calendars", "calendar_policy",
)  # fmt: skip


@extend_schema_field({"type": "string"})  # a name (ids are read too)
class CalendarRefField(serializers.RelatedField):
    """A calendar named by its name (what export writes), or by its id."""

    default_error_messages = {
        "does_not_exist": _("No calendar named {value}."),
        "incorrect_type": _("Name a calendar (its name, or its id)."),
    }

    def to_internal_value(self, data: Any) -> Calendar:
        if isinstance(data, bool) or not isinstance(data, str | int):
            self.fail("incorrect_type")
        key = {"pk": data} if isinstance(data, int) else {"name": data}
        found = Calendar.objects.filter(**key).first()
        if found is None:
            self.fail("does_not_exist", value=repr(data))
        return found

    def to_representation(self, value: Any) -> str:
        return value.name


class ScheduleDefinitionSerializer(StrictModelSerializer):
    """A schedule as defined by a person, without its job: what export writes under a job."""

    params = serializers.DictField(
        required=False, help_text=BatchSchedule._meta.get_field("params").help_text
    )
    calendars = CalendarRefField(
        many=True,
        required=False,
        queryset=Calendar.objects.all(),
        help_text=_(
            "The exclusion calendars, by name (or id); left out: unchanged. Days they exclude "
            "get no fire (see calendar_policy)."
        ),
    )

    class Meta:
        model = BatchSchedule
        fields: tuple[str, ...] = SCHEDULE_DEFINITION_FIELDS


# --- calendars -------------------------------------------------------------------------------

CALENDAR_DEFINITION_FIELDS = ("name", "description", "country", "subdivision",
                              "business_days_only", "excluded_dates")  # fmt: skip


class CalendarDefinitionSerializer(StrictModelSerializer):
    """An exclusion calendar as defined by a person: what export writes and import reads."""

    excluded_dates = serializers.ListField(
        child=StrictCharField(),
        required=False,
        help_text=Calendar._meta.get_field("excluded_dates").help_text,
    )

    class Meta:
        model = Calendar
        fields: tuple[str, ...] = CALENDAR_DEFINITION_FIELDS
        # The calendar service refuses a taken name (on `name`, in the reader's words).
        extra_kwargs: dict[str, dict[str, Any]] = {"name": {"validators": []}}


# --- limits ----------------------------------------------------------------------------------

LIMIT_DEFINITION_FIELDS = ("scope", "name", "max_running", "max_per_second")


class LimitDefinitionSerializer(StrictModelSerializer):
    """A run limit as defined by a person: what export writes and import reads."""

    class Meta:
        model = RunLimit
        fields: tuple[str, ...] = LIMIT_DEFINITION_FIELDS
        # No unique-together check here: the limit service refuses a second limit of the same
        # scope and name on `name`, where DRF's would say it of the whole object.
        validators: list = []
