"""Admin forms. Validation is the services': each model form runs its service's rules on the
instance (services/validation.py), as the service's save does; these forms only turn what a
person types into the values the services judge, and put service errors on fields."""

import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from datetime import timezone as fixed_offset
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.contrib.admin.widgets import AdminSplitDateTime, AdminTextareaWidget
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from batchjobs.batch.registry import batch_job_get, batch_job_names
from batchjobs.errors import InvalidInput, PermissionRequired
from batchjobs.handlers.registry import handlers_all
from batchjobs.models import BatchJob, BatchSchedule, JobKind, JobNotification, UserPreference
from batchjobs.models.job import HttpMethod
from batchjobs.models.schedule import DstFoldPolicy, DstGapPolicy, ScheduleKind
from batchjobs.rules.zone import timezone_errors, zone_names
from batchjobs.scheduling.fire_times import local_instants
from batchjobs.secrets import SECRET_MASK, headers_masked, headers_unmasked
from batchjobs.services.jobs import job_validate
from batchjobs.services.notifications import notification_validate
from batchjobs.services.permissions import job_handler_permission_check
from batchjobs.services.preferences import preference_validate
from batchjobs.services.schedules import schedule_run_after_delay, schedule_validate
from batchjobs.services.validation import service_rules

from .display import stamp


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
    model: type[models.Model], name: str, *, empty: Callable[[], Any], label: Any = ""
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
        with service_rules(self.instance, self._service_validate_read_fields):
            super()._post_clean()  # type: ignore[misc]  # Django's hook; django-stubs omits it

    def _service_validate_read_fields(self) -> None:
        """The service's rules, less their errors on fields the form could not read (bad JSON,
        not a number): the instance still holds the stored value of such a field, so a rule's
        error on it would judge a value the operator did not type."""
        try:
            self.service_validate()
        except ValidationError as error:
            if not hasattr(error, "error_dict"):
                raise
            judged = {
                field: errors
                for field, errors in error.error_dict.items()
                if field not in self.errors  # the field checks' errors, already made
            }
            if judged:
                raise ValidationError(judged) from error


class HeaderRows(forms.Widget):
    """HTTP headers as rows of name, value and a secret box (job_form.js adds and removes
    rows; without it one blank row adds a header per save). A secret value is never sent back
    to the browser: a stored one shows as SECRET_MASK, which saving keeps (headers_unmasked);
    one typed into a refused submission is typed again."""

    # Rows a submission may carry: a request's header list stays far below this.
    MAX_ROWS = 100

    def render(self, name: str, value: Any, attrs=None, renderer=None) -> SafeString:
        headers = value if isinstance(value, list) else []
        base_id = (attrs or {}).get("id", f"id_{name}")
        rows = [
            self._row(name, base_id, index, header)
            for index, header in enumerate([*headers, {}])
            if isinstance(header, dict)
        ]
        return format_html(
            '<div class="bj-header-rows" data-name="{name}">'
            '<input type="hidden" name="{name}-rows" value="{count}">'
            '<div class="bj-header-row bj-header-titles" aria-hidden="true"><span>{name_title}'
            "</span><span>{value_title}</span></div>"
            '{rows}<template class="bj-header-template">{template}</template>'
            '<button type="button" class="button bj-header-add">{add}</button></div>',
            name=name,
            count=len(rows),
            name_title=_("Name"),
            value_title=_("Value"),
            rows=format_html_join("", "{}", ((row,) for row in rows)),
            template=self._row(name, base_id, "__index__", {}),
            add=_("Add a header"),
        )

    def id_for_label(self, id_: str) -> str:
        return f"{id_}-0-name"  # the label "Headers" names the first row's name

    def _row(self, name: str, base_id: str, index: int | str, header: dict[str, Any]) -> SafeString:
        secret = header.get("secret") is True
        shown = header.get("value", "")
        if secret and shown != SECRET_MASK:
            shown = ""  # typed in clear into a refused form: never echoed back
        prefix = f"{name}-{index}-"
        return format_html(
            '<div class="bj-header-row">'
            '<input type="text" name="{prefix}name" id="{base_id}-{index}-name"'
            ' value="{header_name}" aria-label="{name_label}" placeholder="{name_label}"'
            ' class="bj-header-name" maxlength="200" autocomplete="off" spellcheck="false">'
            '<input type="{input_type}" name="{prefix}value" value="{value}"'
            ' aria-label="{value_label}" placeholder="{value_label}" class="bj-header-value"'
            ' autocomplete="{autocomplete}" spellcheck="false">'
            '<label class="bj-header-secret"><input type="checkbox" name="{prefix}secret"{checked}>'
            " {secret_label}</label>"
            '<button type="button" class="button bj-header-remove" title="{remove}"'
            ' aria-label="{remove}">&times;</button></div>',
            prefix=prefix,
            base_id=base_id,
            index=index,
            header_name=header.get("name", ""),
            name_label=_("Name"),
            input_type="password" if secret else "text",
            value=shown,
            value_label=_("Value"),
            autocomplete="new-password" if secret else "off",
            checked=" checked" if secret else "",
            secret_label=_("Secret"),
            remove=_("Remove this header"),
        )

    def value_from_datadict(self, data, files, name: str) -> Any:
        if f"{name}-rows" not in data:
            return data.get(name)  # the list as JSON text, as a script may post it
        try:
            count = min(int(data[f"{name}-rows"]), self.MAX_ROWS)
        except (TypeError, ValueError):
            count = 0
        headers = []
        for index in range(count):
            prefix = f"{name}-{index}-"
            if f"{prefix}name" not in data:  # a row removed in the browser
                continue
            header_name = str(data.get(f"{prefix}name", "")).strip()
            header_value = str(data.get(f"{prefix}value", ""))
            if header_name or header_value:  # a blank row adds nothing
                secret = f"{prefix}secret" in data  # an unchecked box is not sent
                headers.append({"name": header_name, "value": header_value, "secret": secret})
        return headers

    def value_omitted_from_data(self, data, files, name: str) -> bool:
        return f"{name}-rows" not in data and name not in data


class HeaderRowsField(JSONTextField):
    """The job's headers: rows from HeaderRows, or the list typed as JSON."""

    widget = HeaderRows

    def __init__(self, **kwargs: Any):
        super().__init__(empty=list, widget=HeaderRows(), **kwargs)

    def bound_data(self, data: Any, initial: Any) -> Any:
        return data if isinstance(data, list) else super().bound_data(data, initial)

    def prepare_value(self, value: Any) -> Any:
        return value  # the rows widget renders the list itself


class BatchJobAdminForm(ServiceRulesForm):
    http_headers = HeaderRowsField(
        label=gettext_lazy("Headers"),
        help_text=gettext_lazy(
            "Sent with every call. A secret value is stored encrypted and shown masked; leave "
            "the mask to keep it."
        ),
    )
    params = json_field_for(BatchJob, "params", empty=dict, label=gettext_lazy("Parameters"))
    # Set by the ModelAdmin's get_form: who is saving.
    user: AbstractBaseUser | AnonymousUser | None = None

    class Meta:
        model = BatchJob
        fields = "__all__"  # noqa: DJ007 - ModelAdmin.get_form narrows it to the fieldsets
        # The fieldset already says "HTTP call" or "Python handler".
        labels = {
            "http_method": gettext_lazy("Method"),
            "http_url": gettext_lazy("URL"),
            "http_body": gettext_lazy("Body"),
            "http_expected_status": gettext_lazy("Expected status"),
            "http_assertion_kind": gettext_lazy("Response check"),
            "http_assertion": gettext_lazy("Check expression"),
            "http_assertion_value": gettext_lazy("Expected value"),
            "handler_name": gettext_lazy("Handler"),
            "batch_job_name": gettext_lazy("Batch job"),
            "retry_on_4xx": gettext_lazy("Retry on 4xx"),
        }

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Kept before the POST is applied: masked values in the submission stand for these.
        self.stored_headers = self.instance.http_headers if self.instance.pk else []
        self.initial["http_headers"] = headers_masked(self.initial.get("http_headers", []))
        if "http_method" in self.fields:
            # As written in a request: the model's choices label them "Get", "Post".
            method_field = self.fields["http_method"]
            assert isinstance(method_field, forms.ChoiceField)  # the model field has choices
            method_field.choices = [(method, method) for method in HttpMethod]
        for field, catalogue in (
            ("handler_name", handler_catalogue()),
            ("batch_job_name", batch_job_catalogue()),
        ):
            if field in self.fields:
                self.fields[field].widget = forms.Select(
                    choices=_registered_choices(catalogue, self.initial.get(field, ""))
                )

    @property
    def parameter_catalogue(self) -> dict[str, Any]:
        """What job_form.js builds the parameter form from: each handler's and batch job's
        description and JSON Schema, and the form's words in the operator's language."""
        return {
            "handler": handler_catalogue(),
            "batch": batch_job_catalogue(),
            "text": parameter_form_text(),
        }

    def clean_http_headers(self) -> Any:
        return headers_unmasked(self.cleaned_data["http_headers"], stored=self.stored_headers)

    def service_validate(self) -> None:
        # The defaults a schedule fires with: every required parameter must be among them.
        job_validate(job=self.instance, params_complete=True)

    def _post_clean(self) -> None:
        # After the instance has the submitted values (and was validated with them): an error
        # added in clean() would take handler_name out of them first.
        super()._post_clean()
        form_add_permission_errors(self, self.instance, user=self.user)


def handler_catalogue() -> list[dict[str, Any]]:
    """The registered handlers, each with its description and parameters' schema."""
    return [
        {"name": h.name, "description": str(h.description), "schema": h.schema}
        for h in handlers_all()
    ]


def batch_job_catalogue() -> list[dict[str, Any]]:
    """The registered batch jobs, each with its description and parameters' schema."""
    return [
        {"name": entry.name, "description": entry.description, "schema": entry.parameters_schema}
        for name in batch_job_names()
        if (entry := batch_job_get(name)) is not None
    ]


def parameter_form_text() -> dict[str, str]:
    """The parameter form's words (job_form.js), in the operator's language."""
    return {
        "noParameters": _("Takes no parameters."),
        "required": _("Required."),
        "default": _("Default: %(value)s"),
        "enterNumber": _("Enter a number."),
        "enterInteger": _("Enter a whole number."),
        "atLeast": _("Must be at least %(limit)s."),
        "atMost": _("Must be at most %(limit)s."),
        "moreThan": _("Must be more than %(limit)s."),
        "lessThan": _("Must be less than %(limit)s."),
        "minLength": _("Enter at least %(limit)s characters."),
        "maxLength": _("Enter at most %(limit)s characters."),
        "invalidJson": _("Enter valid JSON."),
        "yes": _("yes"),
        "no": _("no"),
        "unset": _("(not set)"),
        "asJson": _("As JSON"),
    }


def run_parameter_catalogue(job: BatchJob) -> dict[str, Any]:
    """What job_form.js builds the run page's parameter form from: the job's own handler or
    batch job ("fixed"), and its saved parameters, the defaults a run's go over (a parameter
    the schema requires is not required of a run when the job has it)."""
    name = job.handler_name if job.kind == JobKind.HANDLER else job.batch_job_name
    return {
        "handler": [e for e in handler_catalogue() if e["name"] == name],
        "batch": [e for e in batch_job_catalogue() if e["name"] == name],
        "text": parameter_form_text(),
        "fixed": {"kind": job.kind, "name": name},
        "defaults": job.params,
    }


def _registered_choices(catalogue: list[dict[str, Any]], current: str) -> list[tuple[str, str]]:
    choices = [("", "---------")] + [(entry["name"], entry["name"]) for entry in catalogue]
    if current and current not in {entry["name"] for entry in catalogue}:
        # A stored name whose code is gone stays selected (and is refused at save by name).
        choices.append((current, _("%(name)s (not registered)") % {"name": current}))
    return choices


ZONE_LIST_ID = "bj-time-zones"


class TimeZoneInput(forms.TextInput):
    """A zone's name, with a searchable list of zones under it as one types: what
    rules.zone.zone_suggestions finds (time_zone_picker.js asks the admin's zones/ view), so
    "Asia/Seul" offers Asia/Seoul. Without JavaScript a <datalist> of the tz database's names
    is the browser's own list."""

    class Media:
        js = ["batchjobs/time_zone_picker.js"]
        css = {"all": ["batchjobs/time_zone_picker.css"]}

    def __init__(self, attrs: dict[str, Any] | None = None):
        super().__init__(
            {
                "list": ZONE_LIST_ID,
                "autocomplete": "off",
                "spellcheck": "false",
                "class": "bj-zone-input",
                **(attrs or {}),
            }
        )

    def render(self, name, value, attrs=None, renderer=None) -> SafeString:
        # Reversed when a page is drawn: the URLconf is not loaded when the form module is.
        attrs = {**(attrs or {}), "data-suggest-url": reverse("admin:batchjobs_zone_suggestions")}
        return format_html("{}{}", super().render(name, value, attrs, renderer), _zone_list())


@cache
def _zone_list() -> SafeString:
    # The same ~600 names on every page that has a zone box: built once per process. A page
    # with two boxes (a job's schedules) has the list twice; the first id wins, harmlessly.
    options = format_html_join("", '<option value="{}">', ((name,) for name in zone_names()))
    return format_html('<datalist id="{}">{}</datalist>', ZONE_LIST_ID, options)


# A time of day with a UTC offset after it: "01:30 -05:00", "01:30:00 +0900".
TIME_WITH_OFFSET = re.compile(
    r"(?P<time>.*?\d)\s*(?P<sign>[+-])(?P<hours>\d{2}):?(?P<minutes>\d{2})"
)


class OffsetTimeField(forms.TimeField):
    """A time of day, with an optional UTC offset after it ("01:30 -05:00"): how an operator
    names one of the two 01:30s of a day when the clocks go back."""

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            match = TIME_WITH_OFFSET.fullmatch(value.strip())
            if match:
                time_of_day = super().to_python(match["time"])
                offset = timedelta(hours=int(match["hours"]), minutes=int(match["minutes"]))
                if time_of_day is None or offset >= timedelta(hours=24):
                    raise ValidationError(self.error_messages["invalid"], code="invalid")
                sign = -1 if match["sign"] == "-" else 1
                return time_of_day.replace(tzinfo=fixed_offset(sign * offset))
        return super().to_python(value)


def offset_text(value: datetime) -> str:
    """The UTC offset of an aware datetime as "+09:00" ("%:z" from Python 3.12 on)."""
    offset = value.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(offset) // timedelta(minutes=1)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def is_ambiguous(value: datetime) -> bool:
    """The local time of `value` (aware, in a ZoneInfo) occurs twice: the clocks go back."""
    return value.replace(fold=1 - value.fold).utcoffset() != value.utcoffset()


class ZonedSplitDateTime(AdminSplitDateTime):
    """The admin's date and time boxes, showing a value as the form put it: already in the
    schedule's zone (not the operator's), with the offset after the time where that local time
    occurs twice, so that saving the page again keeps the same instant."""

    def __init__(self, attrs: dict[str, Any] | None = None):
        super().__init__(attrs)
        self.widgets[1].attrs["size"] = "15"  # room for "01:30:00 -05:00"

    def decompress(self, value: Any) -> tuple[Any, Any]:  # the time as text, maybe offset
        if isinstance(value, datetime):
            shown = f"{value:%H:%M:%S}"
            if value.tzinfo is not None and is_ambiguous(value):
                shown = f"{shown} {offset_text(value)}"
            return value.date(), shown
        return None, None


class WallClockDateTimeField(forms.SplitDateTimeField):
    """A date and a time as read on a wall clock of a zone the form decides (the schedule's),
    so it is not read in the operator's zone here: cleaned to a naive datetime, or an aware
    one at a fixed offset when an offset was typed after the time."""

    widget = ZonedSplitDateTime

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        date_field, time_field = self.fields
        time_of_day = OffsetTimeField(error_messages=time_field.error_messages)
        time_of_day.required = time_field.required
        self.fields = (date_field, time_of_day)

    def compress(self, data_list: tuple[date, time] | None) -> datetime | None:
        if not data_list:
            return None
        if data_list[0] in self.empty_values:
            raise ValidationError(self.error_messages["invalid_date"], code="invalid_date")
        if data_list[1] in self.empty_values:
            raise ValidationError(self.error_messages["invalid_time"], code="invalid_time")
        return datetime.combine(*data_list)


def instant_of_local_time(local: datetime, zone: ZoneInfo) -> datetime:
    """The instant (UTC) at which the wall clocks of `zone` read `local`. A local time that
    does not exist (the clocks go forward over it) or occurs twice (they go back) is refused
    with what to enter instead; `local` with an offset names one of two occurrences itself.

    A fixed time a schedule repeats follows the schedule's DST policy (DESIGN.md §4.8: skip or
    shift; first or both); a time typed here is one instant, which no policy may move or
    double, so the operator chooses it."""
    wall = local.replace(tzinfo=None)
    wall_text = f"{wall:%Y-%m-%d %H:%M:%S}"
    if local.tzinfo is not None:  # an offset was typed: it must be the zone's at that time
        instant = local.astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) != wall:
            raise ValidationError(
                _("%(time)s %(offset)s is not a time of %(zone)s: remove the offset.")
                % {"time": wall_text, "offset": offset_text(local), "zone": zone.key},
                code="wrong_offset",
            )
        return instant
    instants = local_instants(
        wall,
        zone,
        real_time=False,
        gap_policy=DstGapPolicy.SHIFT,
        fold_policy=DstFoldPolicy.BOTH,
    )
    if len(instants) == 2:
        first, second = (instant.astimezone(zone) for instant in instants)
        raise ValidationError(
            _(
                "%(time)s occurs twice in %(zone)s: the clocks go back that day. Type the "
                "offset of the one you mean after the time: %(first)s (%(first_name)s, the "
                "first) or %(second)s (%(second_name)s, the second)."
            )
            % {
                "time": wall_text,
                "zone": zone.key,
                "first": f"{first:%H:%M:%S} {offset_text(first)}",
                "first_name": first.tzname(),
                "second": f"{second:%H:%M:%S} {offset_text(second)}",
                "second_name": second.tzname(),
            },
            code="ambiguous",
        )
    after_gap = instants[0].astimezone(zone)
    if after_gap.replace(tzinfo=None) != wall:
        before_gap = (instants[0] - timedelta(seconds=1)).astimezone(zone) + timedelta(seconds=1)
        raise ValidationError(
            _(
                "%(time)s does not exist in %(zone)s: that day the clocks go from %(from)s "
                "straight to %(to)s. Enter %(to)s or another time."
            )
            % {
                "time": wall_text,
                "zone": zone.key,
                "from": f"{before_gap:%H:%M:%S}",
                "to": f"{after_gap:%H:%M:%S}",
            },
            code="nonexistent",
        )
    return instants[0]


# The kinds as the forms offer them: "once" in its two ways, as an operator thinks of it
# (both are saved as kind once; "after a delay" also keeps the delay it was given).
ONCE_AFTER_DELAY = "delay"
FORM_KINDS = [
    ("", "---------"),
    (ScheduleKind.ONCE, gettext_lazy("Once, at a date and time")),
    (ONCE_AFTER_DELAY, gettext_lazy("Once, after a delay")),
    (ScheduleKind.INTERVAL, ScheduleKind.INTERVAL.label),
    (ScheduleKind.CRON, ScheduleKind.CRON.label),
]
# The fields each form kind reads: schedule_form.js shows only those of the chosen kind, and
# a save empties the others, so an old cron does not linger under "Every N units".
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    ScheduleKind.ONCE: ("run_at",),
    ONCE_AFTER_DELAY: ("delay",),
    ScheduleKind.INTERVAL: ("interval_every", "interval_unit", "dst_gap_policy", "dst_fold_policy"),
    ScheduleKind.CRON: ("cron_expression", "dst_gap_policy", "dst_fold_policy"),
}
KIND_EMPTY_VALUES = {"run_at": None, "interval_every": None, "cron_expression": ""}
# The fields the live preview reads (SchedulePreviewForm's, and the delay).
PREVIEW_FIELDS = [
    "kind", "run_at", "interval_every", "interval_unit", "cron_expression", "timezone",
    "start_at", "end_at", "max_runs", "dst_gap_policy", "dst_fold_policy", "jitter_seconds",
]  # fmt: skip


class ScheduleTimesForm(ServiceRulesForm):
    """What a schedule's forms share. The kind, with "once" offered at a date and time or
    after a delay, and only the fields of the chosen kind shown (schedule_form.js) and kept.
    A schedule's run_at, start_at and end_at are typed and shown in the schedule's own time
    zone (a once-schedule at 23:50 in Asia/Seoul fires at 23:50 KST, 14:50 UTC); they are
    stored as instants."""

    ZONED = ("run_at", "start_at", "end_at")

    delay = forms.FloatField(
        required=False,
        label=gettext_lazy("Delay (seconds)"),
        help_text=gettext_lazy("Once, after a delay: the seconds from the save to the fire."),
        widget=forms.NumberInput(attrs={"min": 0, "step": "any"}),
    )

    class Media:
        js = ["batchjobs/schedule_form.js"]
        css = {"all": ["batchjobs/schedule_form.css"]}

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        zone = _zone_or_none(self.instance.timezone)
        for name in self.ZONED:
            if name not in self.fields:
                continue
            field = self.fields[name]
            self.fields[name] = WallClockDateTimeField(
                required=False,
                label=field.label,
                help_text=format_html("{} {}", field.help_text, _("In the schedule's time zone.")),
            )
            value = self.initial.get(name)
            if isinstance(value, datetime) and zone is not None:
                self.initial[name] = value.astimezone(zone)
                yours = stamp(value)
                if yours != stamp(value, zone):  # the operator reads another clock
                    self.fields[name].help_text = format_html(
                        "{} <b>{}</b>",
                        self.fields[name].help_text,
                        _("%(time)s in your time zone") % {"time": yours},
                    )
        if "timezone" in self.fields:
            self.fields["timezone"].widget = TimeZoneInput()
        if "kind" in self.fields:
            self._offer_form_kinds()

    def _offer_form_kinds(self) -> None:
        model_field = self.fields["kind"]
        self.fields["kind"] = forms.ChoiceField(
            choices=FORM_KINDS,
            label=model_field.label,
            help_text=model_field.help_text,
            # What schedule_form.js needs: the fields of each kind, and where to preview.
            widget=forms.Select(
                attrs={
                    "class": "bj-schedule-kind",
                    "data-kind-fields": json.dumps(KIND_FIELDS),
                    "data-preview-fields": json.dumps([*PREVIEW_FIELDS, "delay"]),
                    "data-preview-url": reverse("admin:batchjobs_batchschedule_preview"),
                    "data-schedule": self.instance.pk or "",
                }
            ),
        )
        if self.instance.kind == ScheduleKind.ONCE and self.instance.delay_seconds is not None:
            self.initial["kind"] = ONCE_AFTER_DELAY
            self.initial["delay"] = self.instance.delay_seconds

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}  # a ModelForm's is its cleaned_data, never None
        kind = cleaned.get("kind")
        if kind in KIND_FIELDS:
            for name, empty in KIND_EMPTY_VALUES.items():
                if name in self.fields and name not in KIND_FIELDS[kind]:
                    cleaned[name] = empty
                    self.errors.pop(name, None)  # a stale value of a kind not chosen
        if kind == ONCE_AFTER_DELAY:
            cleaned["kind"] = ScheduleKind.ONCE
            self._clean_delay(cleaned)
        elif kind == ScheduleKind.ONCE:
            self.instance.delay_seconds = None  # now given as a date and time
        zone_name = cleaned.get("timezone", self.instance.timezone)
        # An unknown zone is the timezone field's error; the times are then read in UTC, so
        # that the other checks still run on them.
        zone = _zone_or_none(zone_name) or ZoneInfo("UTC")
        for name in self.ZONED:
            local = cleaned.get(name)
            if local is None or (name == "run_at" and kind != ScheduleKind.ONCE):
                continue
            try:
                cleaned[name] = instant_of_local_time(local, zone)
            except ValidationError as error:
                self.add_error(name, error)
        return cleaned

    def _clean_delay(self, cleaned: dict[str, Any]) -> None:
        """run_at from the delay, counted from this save; a delay not changed since the
        schedule was saved keeps the instant it gave then."""
        delay = cleaned.get("delay")
        if delay is None:
            if "delay" not in self.errors:
                self.add_error("delay", _("Enter the seconds to wait before the fire."))
            return
        unchanged = (
            self.instance.pk is not None
            and self.instance.delay_seconds == delay
            and not {"kind", "delay"} & set(self.changed_data)
        )
        if unchanged:
            cleaned["run_at"] = self.instance.run_at
            return
        try:
            schedule_run_after_delay(schedule=self.instance, delay_seconds=delay)
        except InvalidInput as error:
            self.add_error("delay", error.field_errors["delay_seconds"])
            return
        cleaned["run_at"] = self.instance.run_at


def _zone_or_none(name: str) -> ZoneInfo | None:
    return None if not name or timezone_errors(name) else ZoneInfo(name)


class BatchScheduleAdminForm(ScheduleTimesForm):
    params = json_field_for(BatchSchedule, "params", empty=dict)
    # Set by the ModelAdmin's get_form: who is saving.
    user: AbstractBaseUser | AnonymousUser | None = None

    class Meta:
        model = BatchSchedule
        fields = "__all__"  # noqa: DJ007 - ModelAdmin.get_form narrows it to the fieldsets

    def service_validate(self) -> None:
        schedule_validate(schedule=self.instance)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        job = cleaned.get("job") or (self.instance.job if self.instance.job_id else None)
        form_add_permission_errors(self, job, user=self.user)
        return cleaned


class BatchScheduleInlineForm(ScheduleTimesForm):
    class Meta:
        model = BatchSchedule
        fields = "__all__"  # noqa: DJ007 - the inline narrows it to its fields

    def service_validate(self) -> None:
        schedule_validate(schedule=self.instance)


class SchedulePreviewForm(ScheduleTimesForm):
    """A schedule's timing as typed in one of the schedule forms (its fields' names without
    the inline's prefix), read as a save reads it, for the live preview. A field the page does
    not have (the inline has no DST policy) keeps the schedule's value."""

    class Meta:
        model = BatchSchedule
        fields = PREVIEW_FIELDS

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        for name in list(self.fields):
            omitted = self.fields[name].widget.value_omitted_from_data(self.data, {}, name)
            if omitted and name not in ("kind", "timezone", "delay"):
                del self.fields[name]

    def service_validate(self) -> None:
        try:
            schedule_validate(schedule=self.instance)
        except ValidationError as error:
            # Only what the page shows: a field it lacks was checked when it was saved.
            shown = {f: m for f, m in error.message_dict.items() if f in self.fields}
            if shown:
                raise ValidationError(shown) from error


class UserPreferenceForm(ServiceRulesForm):
    """An operator's own preferences (the user is the one signed in, never chosen here)."""

    class Meta:
        model = UserPreference
        fields = ["time_zone"]
        widgets = {"time_zone": TimeZoneInput()}

    def service_validate(self) -> None:
        preference_validate(preference=self.instance)


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
        label=gettext_lazy("Parameters"),
        help_text=gettext_lazy(
            "A JSON object merged over the job's default parameters for this run only; "
            "leave {} to run with the defaults."
        ),
    )
    logical_time = forms.DateTimeField(
        required=False,
        label=gettext_lazy("Logical time"),
        widget=forms.TextInput(attrs={"placeholder": "2027-01-04T00:00:00+09:00", "size": 32}),
        help_text=gettext_lazy(
            "The instant the run stands for (ISO 8601; without an offset, in your time zone), "
            "e.g. a past fire time to process its period again. Empty: now."
        ),
    )
