"""Admin forms. Validation is the services': each model form runs its service's rules on the
instance (services/validation.py), as the service's save does; these forms only turn what a
person types into the values the services judge, and put service errors on fields."""

import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib.admin.widgets import AdminTextareaWidget
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import models
from django.utils.html import escape
from django.utils.text import capfirst

from batchjobs.batch.registry import batch_job_names
from batchjobs.errors import InvalidInput, PermissionRequired
from batchjobs.handlers.registry import handlers_all
from batchjobs.models import BatchJob, BatchSchedule, JobNotification
from batchjobs.secrets import headers_masked, headers_unmasked
from batchjobs.services.jobs import job_validate
from batchjobs.services.notifications import notification_validate
from batchjobs.services.permissions import job_handler_permission_check
from batchjobs.services.schedules import schedule_validate
from batchjobs.services.validation import service_rules


class JSONTextField(forms.JSONField):
    """A JSON textarea that shows its value indented and reads an empty box as `empty()`
    (the model fields are NOT NULL: an empty box means no headers, no parameters)."""

    def __init__(self, *, empty: Callable[[], Any], **kwargs: Any):
        self.empty = empty
        # A new object's box shows the empty value, not "null" (the column is NOT NULL).
        kwargs.setdefault("initial", empty)
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", AdminTextareaWidget(attrs={"rows": 6}))
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> Any:
        if value in self.empty_values:
            return self.empty()
        value = super().to_python(value)
        return self.empty() if value is None else value  # "null" typed in the box

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2, cls=self.encoder)


def json_field_for(
    model: type[models.Model], name: str, *, empty: Callable[[], Any], label: str = ""
) -> JSONTextField:
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)  # a column of the model, not a reverse relation
    return JSONTextField(
        empty=empty, label=label or capfirst(field.verbose_name), help_text=field.help_text
    )


def form_add_service_errors(form: forms.BaseForm, error: InvalidInput) -> None:
    """Show a service's InvalidInput next to the fields it names (or above the form)."""
    for field, messages in error.field_errors.items():
        form.add_error(field if field in form.fields else None, messages)


def form_add_permission_errors(form: forms.BaseForm, job: BatchJob | None, *, user) -> None:
    """Show, next to the field, that the user may not save this job (or a schedule of it)."""
    if job is None:
        return
    try:
        job_handler_permission_check(kind=job.kind, handler_name=job.handler_name, user=user)
    except PermissionRequired as error:
        form.add_error(error.field if error.field in form.fields else None, str(error))


class ServiceRulesForm(forms.ModelForm):
    """A model form whose model validation runs the service's rules where Model.clean() would:
    after the field checks, before the unique and constraint checks. A bad value shows next to
    its field, with the message the API gives."""

    def service_validate(self) -> None:
        """Raise Django's ValidationError by field for what the service refuses."""
        raise NotImplementedError

    def _post_clean(self) -> None:
        with service_rules(self.instance, self.service_validate):
            super()._post_clean()  # type: ignore[misc]  # Django's hook; django-stubs omits it


class BatchJobAdminForm(ServiceRulesForm):
    http_headers = json_field_for(BatchJob, "http_headers", empty=list, label="Headers")
    params = json_field_for(BatchJob, "params", empty=dict, label="Parameters")
    # Set by the ModelAdmin's get_form: who is saving.
    user: AbstractBaseUser | AnonymousUser | None = None

    class Meta:
        model = BatchJob
        fields = "__all__"  # noqa: DJ007 - ModelAdmin.get_form narrows it to the fieldsets
        # The fieldset already says "HTTP call" or "Python handler".
        labels = {
            "http_method": "Method",
            "http_url": "URL",
            "http_body": "Body",
            "http_expected_status": "Expected status",
            "http_assertion_kind": "Response check",
            "http_assertion": "Check expression",
            "http_assertion_value": "Expected value",
            "handler_name": "Handler",
            "batch_job_name": "Batch job",
            "retry_on_4xx": "Retry on 4xx",
        }

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Kept before the POST is applied: masked values in the submission stand for these.
        self.stored_headers = self.instance.http_headers if self.instance.pk else []
        self.initial["http_headers"] = headers_masked(self.initial.get("http_headers", []))
        if "handler_name" in self.fields:
            registered = "; ".join(
                f"{h.name} ({h.description})" if h.description else h.name for h in handlers_all()
            )
            # Admin templates render help text as HTML; descriptions come from docstrings.
            self.fields["handler_name"].help_text += escape(f" Registered: {registered}.")
        if "batch_job_name" in self.fields:
            names = ", ".join(batch_job_names()) or "none"
            self.fields["batch_job_name"].help_text += escape(f" Registered: {names}.")

    def clean_http_headers(self) -> Any:
        return headers_unmasked(self.cleaned_data["http_headers"], stored=self.stored_headers)

    def service_validate(self) -> None:
        job_validate(job=self.instance)

    def _post_clean(self) -> None:
        # After the instance has the submitted values (and was validated with them): an error
        # added in clean() would take handler_name out of them first.
        super()._post_clean()
        form_add_permission_errors(self, self.instance, user=self.user)


class BatchScheduleAdminForm(ServiceRulesForm):
    params = json_field_for(BatchSchedule, "params", empty=dict)
    # Set by the ModelAdmin's get_form: who is saving.
    user: AbstractBaseUser | AnonymousUser | None = None

    class Meta:
        model = BatchSchedule
        fields = "__all__"  # noqa: DJ007 - ModelAdmin.get_form narrows it to the fieldsets

    def service_validate(self) -> None:
        schedule_validate(schedule=self.instance)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}  # a ModelForm's is its cleaned_data, never None
        job = cleaned.get("job") or (self.instance.job if self.instance.job_id else None)
        form_add_permission_errors(self, job, user=self.user)
        return cleaned


class BatchScheduleInlineForm(ServiceRulesForm):
    class Meta:
        model = BatchSchedule
        fields = "__all__"  # noqa: DJ007 - the inline narrows it to its fields

    def service_validate(self) -> None:
        schedule_validate(schedule=self.instance)


class JobNotificationInlineForm(ServiceRulesForm):
    class Meta:
        model = JobNotification
        fields = "__all__"  # noqa: DJ007 - the inline narrows it to its fields

    def service_validate(self) -> None:
        notification_validate(notification=self.instance)


class RunJobForm(forms.Form):
    params = JSONTextField(
        empty=dict,
        initial=dict,
        label="Parameters",
        help_text=(
            "A JSON object merged over the job's default parameters for this run only; "
            "leave {} to run with the defaults."
        ),
    )
