"""Exclusion calendars as the admin and the API list them: each with how many schedules use it."""

from django.db.models import Count, QuerySet

from batchjobs.models import Calendar


def calendar_list() -> QuerySet[Calendar]:
    """Every calendar with `schedule_count`, by name."""
    return Calendar.objects.annotate(schedule_count=Count("schedules")).order_by("name")
