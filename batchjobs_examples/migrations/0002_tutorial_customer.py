"""The tutorial handlers' customer, in state only: its table is on the operator's databases,
created by the handlers where missing (the model is not managed), never by a migration."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('batchjobs_examples', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='TutorialCustomer',
            fields=[
                ('email', models.CharField(help_text="The customer's unique e-mail address.", max_length=254, primary_key=True, serialize=False)),
                ('name', models.CharField(help_text="The customer's display name.", max_length=200)),
                ('active', models.BooleanField(default=True, help_text='Whether the customer is active.')),
                ('version', models.PositiveIntegerField(default=1, help_text='Raised by every change; a copy carries the version it copied.')),
                ('synced_version', models.PositiveIntegerField(blank=True, help_text='The version last copied to the next database.', null=True)),
            ],
            options={
                'db_table': 'examples_tutorial_customer',
                'ordering': ['email'],
                'managed': False,
            },
        ),
    ]
