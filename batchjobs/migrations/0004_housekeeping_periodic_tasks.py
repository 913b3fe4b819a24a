"""Housekeeping tasks as django-celery-beat PeriodicTasks, so that operators see them (and may
change their timing or disable them) in the admin. Created once: a deleted one stays deleted."""

import json

from django.db import migrations

DEAD_MAN = "batchjobs: missed-run check (dead-man notifications)"
RETENTION = "batchjobs: retention (purge old executions)"


def create_tasks(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")

    every_minute, _ = IntervalSchedule.objects.get_or_create(every=60, period="seconds")
    nightly, _ = CrontabSchedule.objects.get_or_create(
        minute="17", hour="3", day_of_week="*", day_of_month="*", month_of_year="*",
        timezone="UTC",
    )
    PeriodicTask.objects.get_or_create(
        name=DEAD_MAN,
        defaults={
            "task": "batchjobs.notifications_check_missed",
            "interval": every_minute,
            "args": json.dumps([]),
            "description": "Sends 'missed' notifications for schedules whose fire is overdue.",
        },
    )
    PeriodicTask.objects.get_or_create(
        name=RETENTION,
        defaults={
            "task": "batchjobs.executions_purge_expired",
            "crontab": nightly,
            "args": json.dumps([]),
            "description": (
                "Deletes finished executions older than their job's retention_days, or "
                "BATCHJOBS_RETENTION_DAYS, in small batches."
            ),
        },
    )


def delete_tasks(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name__in=[DEAD_MAN, RETENTION]
    ).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("batchjobs", "0003_audit_and_notifications"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_tasks, delete_tasks)]
