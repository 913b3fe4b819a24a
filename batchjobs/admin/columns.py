"""Columns and read-only fields the model admins share."""

from collections.abc import Callable
from typing import Any, cast

from django.contrib import admin
from django.db import models
from django.utils.safestring import SafeString

from .display import moment


def moment_column(model: type[models.Model], field: str) -> Callable[[Any, Any], SafeString | str]:
    """A ModelAdmin (or inline) method showing the model's point in time `field` as
    display.moment() shows it, labelled and sorted as the field: the admin's own rendering of a
    date-time field leaves out the zone."""

    label = cast(models.Field, model._meta.get_field(field)).verbose_name  # a field, not a relation

    @admin.display(description=label, ordering=field)
    def column(model_admin: Any, obj: models.Model) -> SafeString | str:
        return moment(getattr(obj, field))

    return column
