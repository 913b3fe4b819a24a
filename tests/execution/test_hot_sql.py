"""The hand-written statements of the hot paths know every column of the tables they write:
a NOT NULL column added to BatchLog or BatchAttempt without a value for beat's fire INSERT or
the claim's attempt INSERT fails here, not in beat or a worker at run time."""

import re

import pytest
from django.db import connection, models

from batchjobs.execution import hot_sql
from batchjobs.execution.hot_sql import (
    FIRE_CONSTANTS,
    FIRE_ROW_COLUMNS,
    FIRE_ROW_FIELDS,
    UnfilledColumns,
    insert_constants,
)
from batchjobs.models import AttemptStatus, BatchAttempt, BatchLog, ExecutionStatus, Trigger

pytestmark = pytest.mark.django_db


def _database_columns(model: type[models.Model]) -> dict[str, object]:
    """The table's columns as the database has them: name -> its introspected description."""
    with connection.cursor() as cursor:
        described = connection.introspection.get_table_description(cursor, model._meta.db_table)
    return {column.name: column for column in described}


def _database_defaults(model: type[models.Model]) -> set[str]:
    """The columns that have a default in the database itself."""
    if connection.vendor != "postgresql":
        return {name for name, column in _database_columns(model).items() if column.default}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = %s AND column_default IS NOT NULL",
            [model._meta.db_table],
        )
        return {name for (name,) in cursor.fetchall()}


def test_every_batchlog_column_is_filled_by_the_fire_insert_or_may_be_left_out():
    # given the execution table as the database has it (the migrations applied)
    columns = _database_columns(BatchLog)
    assert set(columns) == {field.column for field in BatchLog._meta.concrete_fields}
    defaulted = _database_defaults(BatchLog)
    # when beat's INSERT names its columns
    inserted = {*FIRE_ROW_COLUMNS, *FIRE_CONSTANTS}
    # then every other column may be left to the database: nullable, or with a default there
    left_out = set(columns) - inserted
    not_nullable = {
        name for name in left_out if not columns[name].null_ok and name not in defaulted
    }
    assert not_nullable <= {BatchLog._meta.pk.column}, not_nullable


def test_a_not_null_column_without_a_default_is_named_before_any_insert():
    # given the execution's fields and one more, NOT NULL, with no default anywhere
    budget = models.IntegerField()
    budget.set_attributes_from_name("retry_budget")
    fields = [*BatchLog._meta.concrete_fields, budget]
    # when the fire INSERT's constants are worked out
    with pytest.raises(UnfilledColumns) as refused:
        insert_constants(fields, filled=FIRE_ROW_FIELDS, constants={"trigger": "schedule"})
    # then that column is named (beat would have failed on it at its first fire)
    assert "retry_budget" in str(refused.value)


@pytest.mark.parametrize(
    ("field", "literal"),
    [
        (models.IntegerField(default=3), "3"),
        (models.IntegerField(null=True), "NULL"),
        (models.CharField(max_length=10), "''"),
        (models.JSONField(default=dict), "'{}'"),
        (models.BooleanField(default=False), "FALSE"),
        (models.CharField(max_length=10, default="50% off"), "'50%% off'"),
    ],
)
def test_a_new_column_takes_its_default_as_the_orm_would_save_it(field, literal):
    field.set_attributes_from_name("added")
    fields = [*BatchLog._meta.concrete_fields, field]
    constants = insert_constants(fields, filled=FIRE_ROW_FIELDS, constants={"trigger": "x"})
    assert constants["added"] == literal


def test_the_fire_insert_fills_the_columns_with_the_models_defaults():
    assert FIRE_CONSTANTS["trigger"] == f"'{Trigger.SCHEDULE.value}'"
    assert FIRE_CONSTANTS[BatchLog._meta.get_field("attempts").column] == "0"
    assert FIRE_CONSTANTS[BatchLog._meta.get_field("execution_context").column] == "'{}'"
    assert FIRE_CONSTANTS[BatchLog._meta.get_field("worker").column] == "''"
    assert FIRE_CONSTANTS[BatchLog._meta.get_field("result").column] == "NULL"


def test_every_batchattempt_column_is_filled_by_the_claims_insert():
    columns = _database_columns(BatchAttempt)
    named = re.search(r"\((.*)\)", hot_sql.ATTEMPT_INSERT).group(1)
    inserted = {name.strip() for name in named.split(",")}
    assert set(columns) - inserted == {BatchAttempt._meta.pk.column}


def test_the_statements_spell_only_statuses_of_the_enums():
    statements = [
        hot_sql.CLAIM_UPDATE,
        hot_sql.CLAIM_POSTGRESQL,
        hot_sql.FINISH_EXECUTION,
        hot_sql.FINISH_ATTEMPT,
        hot_sql.ATTEMPT_INSERT,
    ]
    quoted = {word for sql in statements for word in re.findall(r"'([A-Z_]+)'", sql)}
    known = {status.value for status in ExecutionStatus} | {s.value for s in AttemptStatus}
    assert quoted and quoted <= known, quoted - known
