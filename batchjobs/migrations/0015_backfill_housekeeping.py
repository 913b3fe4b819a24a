"""The backfill pass as a django-celery-beat PeriodicTask (as 0004 made the others): it tops up
every running backfill, so that one whose runs ended unseen (a killed worker) goes on."""

import json

from django.db import migrations

BACKFILL = "batchjobs: backfills (create the next runs up to each cap)"


def create_task(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=60, period="seconds")
    PeriodicTask.objects.get_or_create(
        name=BACKFILL,
        defaults={
            "task": "batchjobs.backfills_top_up",
            "interval": every_minute,
            "args": json.dumps([]),
            "description": (
                "Creates the next runs of each running backfill, up to its concurrency cap "
                "(a run's end does so at once; this pass catches what a killed worker left)."
            ),
        },
    )


def delete_task(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=BACKFILL).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("batchjobs", "0014_occurrences_calendars_dependencies_backfill"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_task, delete_task)]
