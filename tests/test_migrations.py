"""The migrations hold every model change: a model edited without one fails here, not in a
user's `migrate`."""

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_no_model_change_lacks_a_migration():
    # --check exits non-zero (SystemExit) when makemigrations would write a migration
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
