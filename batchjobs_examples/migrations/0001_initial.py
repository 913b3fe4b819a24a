"""The example tables, in this app since it was split from batchjobs.

An installation made before the split has the tables already (batchjobs' 0001 created them, and
its 0007 handed them over, state only): they are adopted with their rows. A fresh installation
gets them created here. Either way the warehouse table is on the alias the router gives it.
"""

from django.db import migrations, models

# Their names from the time they belonged to batchjobs, kept so that existing rows stay.
TABLES = {
    'examplecustomer': 'batchjobs_examplecustomer',
    'warehousecustomer': 'batchjobs_warehousecustomer',
}


def create_table_unless_it_exists(model_name):
    def create(apps, schema_editor):
        model = apps.get_model('batchjobs_examples', model_name)
        existing = schema_editor.connection.introspection.table_names()
        if model._meta.db_table not in existing:
            schema_editor.create_model(model)

    return create


def create_tables():
    # One operation per model, with its name as the hint: the router allows the warehouse table
    # on `warehouse` only and the customer table on `default` only (a RunPython without hints
    # would run on every alias or none).
    return [
        migrations.RunPython(
            create_table_unless_it_exists(model_name),
            # Back to batchjobs' 0006, which owned the tables: they stay for it.
            reverse_code=migrations.RunPython.noop,
            hints={'model_name': model_name},
        )
        for model_name in TABLES
    ]


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('batchjobs', '0007_examples_to_their_own_app'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='ExampleCustomer',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('email', models.EmailField(help_text="The customer's unique e-mail address.", max_length=254, unique=True)),
                        ('name', models.CharField(help_text="The customer's display name.", max_length=200)),
                        ('active', models.BooleanField(default=True, help_text='Whether the customer is active.')),
                        ('updated_at', models.DateTimeField(auto_now=True, help_text='When the row last changed.')),
                        ('synced_at', models.DateTimeField(blank=True, help_text='When the warehouse last received this row.', null=True)),
                    ],
                    options={
                        'db_table': TABLES['examplecustomer'],
                        'ordering': ['email'],
                    },
                ),
                migrations.CreateModel(
                    name='WarehouseCustomer',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('email', models.EmailField(help_text="The customer's unique e-mail address.", max_length=254, unique=True)),
                        ('name', models.CharField(help_text="The customer's display name.", max_length=200)),
                        ('active', models.BooleanField(default=True, help_text='Whether the customer is active.')),
                        ('source_updated_at', models.DateTimeField(help_text="The source row's updated_at when it was copied.")),
                    ],
                    options={
                        'db_table': TABLES['warehousecustomer'],
                        'ordering': ['email'],
                    },
                ),
            ],
            database_operations=[],
        ),
        *create_tables(),
    ]
