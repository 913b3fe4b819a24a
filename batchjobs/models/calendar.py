from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .labels import labelled, named


class CalendarPolicy(models.TextChoices):
    """What becomes of a schedule's fire that falls on a day its calendars exclude."""

    SKIP = "skip", _("Skip it (recorded as excluded)")
    MOVE = "move", _("Move it to the same local time on the next allowed day")


@named(_("calendar"), _("calendars"))
class Calendar(models.Model):
    """Days on which the schedules attached to it do not fire: public holidays of a country
    (and subdivision), weekends (business days only), and custom dates or ranges."""

    name = labelled(
        _("name"),
        models.CharField(max_length=200, unique=True, help_text=_("Unique name for operators.")),
    )
    description = labelled(
        _("description"),
        models.TextField(blank=True, help_text=_("What the calendar is for.")),
    )
    country = labelled(
        _("country"),
        models.CharField(
            max_length=8,
            blank=True,
            help_text=_(
                "ISO 3166-1 alpha-2 code (KR, US, DE...) whose public holidays are excluded; "
                "empty for none."
            ),
        ),
    )
    subdivision = labelled(
        _("subdivision"),
        models.CharField(
            max_length=16,
            blank=True,
            help_text=_("ISO 3166-2 subdivision of the country (a state or province), if any."),
        ),
    )
    business_days_only = labelled(
        _("business days only"),
        models.BooleanField(default=False, help_text=_("Exclude Saturdays and Sundays as well.")),
    )
    excluded_dates = labelled(
        _("excluded dates"),
        models.JSONField(
            default=list,
            blank=True,
            help_text=_(
                'Custom days excluded: a list of "YYYY-MM-DD" dates and "YYYY-MM-DD..YYYY-MM-DD" '
                "ranges (inclusive)."
            ),
        ),
    )
    created_at = labelled(
        _("created at"),
        models.DateTimeField(auto_now_add=True, help_text=_("When it was created.")),
    )
    updated_at = labelled(
        _("updated at"),
        models.DateTimeField(auto_now=True, help_text=_("When it was last changed.")),
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(country="") | Q(country__regex=r"^[A-Z]{2,3}$"),
                name="calendar_country_code",
            ),
            models.CheckConstraint(
                condition=Q(subdivision="") | ~Q(country=""),
                name="calendar_subdivision_has_country",
            ),
        ]

    def __str__(self) -> str:
        return self.name
