"""ExampleCustomer and WarehouseCustomer move to the batchjobs_examples app.

State only: their tables stay where they are, for batchjobs_examples' 0001 to adopt when the
examples are installed (BATCHJOBS_EXAMPLES). In an installation without the examples the tables
that 0001 created are left in place, unused, and never written to: dropping them here would
lose the rows of anyone who turns the examples off and on again, and they cost nothing.
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('batchjobs', '0006_bounds_set_aside_sql_permission'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name='ExampleCustomer'),
                migrations.DeleteModel(name='WarehouseCustomer'),
            ],
            database_operations=[],
        ),
    ]
