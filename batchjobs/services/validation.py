"""Validation of a model instance with its service's rules (job_validate, schedule_validate,
notification_validate), for the services' saves and the admin's forms alike, so that the same
rules guard every way in.

The models know no services (DESIGN.md §5), so Model.clean() cannot call the rules; instead the
rules are run in Model.clean()'s place inside Django's own full_clean(): after the field checks,
before the unique and constraint checks, which then leave out the fields the rules found wrong.
A missing URL thus reads as the URL's error, never also as a constraint's name.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model

from batchjobs.errors import InvalidInput
from batchjobs.rules.bounds import non_finite_errors


@contextmanager
def service_rules(instance: Model, validate: Callable[[], None]) -> Iterator[None]:
    """Within the block, instance.full_clean() (the services' and a ModelForm's) calls
    `validate` where it calls Model.clean(). `validate` raises Django's ValidationError by
    field."""
    # An attribute of this one instance, shadowing the model's no-op clean() for the block.
    instance.clean = validate  # type: ignore[method-assign]
    try:
        yield
    finally:
        del instance.clean


def instance_validate(instance: Model, *, validate: Callable[[], None]) -> None:
    """Check an instance before it is saved: its fields' bounds and constraints and the
    service's rules. Raises InvalidInput naming each bad field."""
    # NaN passes every bound (it compares false) and int(inf) raises: refuse both by name first.
    errors = non_finite_errors(
        {field.name: getattr(instance, field.attname) for field in instance._meta.concrete_fields}
    )
    if errors:
        raise InvalidInput(errors)
    with service_rules(instance, validate):
        try:
            instance.full_clean()
        except DjangoValidationError as exc:
            raise InvalidInput(exc.message_dict) from exc
