"""Translated names for fields and models that stay out of the migrations.

A label is no schema, but Django writes a verbose_name given to a field's constructor or to
Meta into every migration (ticket #21498): adding a translated one to each field would make a
migration that changes nothing in the database. Set after construction instead, the label is
what the admin and forms show, while the migrations keep recording the name Django derives
(field.deconstruct() reads the constructor's argument, ModelState the Meta class's). The
English of each label is the one Django derived before, so the pages read as they did.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from django.db import models

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

FieldT = TypeVar("FieldT", bound=models.Field)
ModelT = TypeVar("ModelT", bound=type[models.Model])


def labelled(label: "StrOrPromise", field: FieldT) -> FieldT:
    """`field`, shown as `label` (a gettext_lazy string)."""
    field.verbose_name = label
    return field


def named(
    singular: "StrOrPromise | None" = None, plural: "StrOrPromise | None" = None
) -> Callable[[ModelT], ModelT]:
    """A class decorator naming a model (gettext_lazy strings), where its Meta does not."""

    def decorate(model: ModelT) -> ModelT:
        if singular is not None:
            model._meta.verbose_name = singular
        if plural is not None:
            model._meta.verbose_name_plural = plural
        return model

    return decorate
