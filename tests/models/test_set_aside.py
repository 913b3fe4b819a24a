"""A refusal by a schema newer than the code is told apart from a row's own bad data."""

import pytest
from django.db import IntegrityError, connection, models, transaction

from batchjobs.models import BatchLog
from batchjobs.models.set_aside import refused_by_newer_schema
from tests.support.factories import handler_job

pytestmark = pytest.mark.django_db(transaction=True)


def refusal(**values) -> IntegrityError:
    job = handler_job("noop")
    with pytest.raises(IntegrityError) as refused, transaction.atomic():
        BatchLog.objects.create(job=job, **values)
    return refused.value


def test_a_column_the_code_does_not_know_is_the_schema():
    probe = models.CharField(max_length=10)  # NOT NULL, no default: as a migration leaves it
    probe.set_attributes_from_name("newer_probe")
    with connection.schema_editor() as editor:
        editor.add_field(BatchLog, probe)
    try:
        error = refusal()
    finally:
        with connection.schema_editor() as editor:
            editor.remove_field(BatchLog, probe)

    assert refused_by_newer_schema(error)


def test_a_column_the_code_knows_is_the_rows_own():
    error = refusal(status=None)  # a value the code wrote: the row's (or the code's) fault

    assert not refused_by_newer_schema(error)
