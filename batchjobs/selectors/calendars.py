"""Exclusion calendars as the admin and the API list them: each with how many schedules use it."""

from django.db.models import Count, QuerySet
from django.utils.translation import gettext as _

from batchjobs.errors import NotFound
from batchjobs.models import Calendar


def calendar_list() -> QuerySet[Calendar]:
    """Every calendar with `schedule_count`, by name."""
    return Calendar.objects.annotate(schedule_count=Count("schedules")).order_by("name")


def calendar_by_name(*, name: str) -> Calendar:
    calendar = Calendar.objects.filter(name=name).first()
    if calendar is None:
        raise NotFound(_("no calendar named %(name)s") % {"name": repr(name)})
    return calendar
