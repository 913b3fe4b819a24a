from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from .labels import labelled, named

tag_name_validator = RegexValidator(
    r"^[\w][\w.:+-]*$",
    _("Use letters, digits and . : + - _ (no spaces); start with a letter, digit or _."),
)


@named(_("tag"), _("tags"))
class JobTag(models.Model):
    """A label operators give jobs (a team, a system, "nightly") to filter and act on them
    together."""

    name = labelled(
        _("name"),
        models.CharField(
            max_length=64,
            unique=True,
            validators=[tag_name_validator],
            help_text=_("Letters, digits and . : + - _, up to 64 characters."),
        ),
    )
    description = labelled(
        _("description"),
        models.CharField(max_length=255, blank=True, help_text=_("What the tag groups.")),
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
