"""Query-string filters of the list endpoints. A value that does not parse is a 400 naming the
parameter; the execution filters run through the selector that the CLI and dashboard share."""

from datetime import UTC

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from django_filters.fields import IsoDateTimeField

from batchjobs.models import (
    BatchJob,
    BatchLog,
    BatchSchedule,
    ExecutionStatus,
    JobKind,
    ScheduleKind,
    Trigger,
)
from batchjobs.selectors.executions import execution_list


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 date and time, handed on in UTC: the database refuses offsets past +-15:59
    ("2030-01-01T00:00:00-22:31" is valid ISO 8601), and no instant compares differently."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError as exc:
            raise ValidationError(_("Enter a date and time between the years 1 and 9999.")) from exc


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


# The largest id a BigAutoField holds: SQLite cannot even bind a larger number (a 500).
MAX_ID = 2**63 - 1


class IdFilter(django_filters.Filter):
    """An id: a whole number (django-filter's NumberFilter would take 1.5 and round it)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class StrictBooleanField(forms.NullBooleanField):
    """true or false (1 or 0); any other value is an error naming the parameter, where
    django-filter's own would ignore it and list everything."""

    widget = forms.TextInput  # the select widget reads an unknown value as "not given"

    def to_python(self, value):
        text = str(value or "").strip().lower()
        if not text:
            return None
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise ValidationError(_("Enter true or false."))

    def validate(self, value) -> None:
        pass


class BooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class JobFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(help_text=_("The exact job name."))
    name_contains = django_filters.CharFilter(
        field_name="name", lookup_expr="icontains", help_text=_("Part of the job name, any case.")
    )
    kind = django_filters.ChoiceFilter(choices=JobKind.choices)
    enabled = BooleanFilter()
    queue = django_filters.CharFilter()
    tag = django_filters.CharFilter(field_name="tags__name", help_text=_("A tag's name."))

    class Meta:
        model = BatchJob
        fields = ("name", "name_contains", "kind", "enabled", "queue", "tag")


class ScheduleFilter(django_filters.FilterSet):
    job = IdFilter(field_name="job_id", help_text=_("The job's id."))
    job_name = django_filters.CharFilter(field_name="job__name", help_text=_("The job's name."))
    kind = django_filters.ChoiceFilter(choices=ScheduleKind.choices)
    paused = BooleanFilter()
    timezone = django_filters.CharFilter()
    set_aside = BooleanFilter(
        method="filter_set_aside",
        help_text=_("true: only schedules beat set aside (firing them raised); false: the others."),
    )

    class Meta:
        model = BatchSchedule
        fields = ("job", "job_name", "kind", "paused", "timezone", "set_aside")

    def filter_set_aside(
        self, queryset: QuerySet[BatchSchedule], name: str, value: bool | None
    ) -> QuerySet[BatchSchedule]:
        return queryset if value is None else queryset.filter(set_aside_at__isnull=not value)


class ExecutionFilter(django_filters.FilterSet):
    job = IdFilter(help_text=_("The job's id."))
    job_name = django_filters.CharFilter(help_text=_("The job's name."))
    schedule = IdFilter(help_text=_("The schedule's id."))
    status = django_filters.MultipleChoiceFilter(
        choices=ExecutionStatus.choices, help_text=_("One or more statuses (repeat the parameter).")
    )
    trigger = django_filters.MultipleChoiceFilter(
        choices=Trigger.choices, help_text=_("One or more triggers (repeat the parameter).")
    )
    created_after = UtcDateTimeFilter(help_text=_("Created at or after (ISO 8601)."))
    created_before = UtcDateTimeFilter(help_text=_("Created before (ISO 8601)."))
    set_aside = BooleanFilter(
        help_text=_(
            "true: only executions housekeeping set aside (processing them raised); "
            "false: the others."
        )
    )

    class Meta:
        model = BatchLog
        fields = (
            "job", "job_name", "schedule", "status", "trigger", "created_after", "created_before",
            "set_aside",
        )  # fmt: skip

    def filter_queryset(self, queryset: QuerySet[BatchLog]) -> QuerySet[BatchLog]:
        data = self.form.cleaned_data
        return execution_list(
            queryset=queryset,
            job_id=data.get("job"),
            job_name=data.get("job_name") or None,
            schedule_id=data.get("schedule"),
            statuses=data.get("status") or (),
            triggers=data.get("trigger") or (),
            created_from=data.get("created_after"),
            created_to=data.get("created_before"),
            set_aside=data.get("set_aside"),
        )
