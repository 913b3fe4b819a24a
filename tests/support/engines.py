"""The database engines the suite runs on. CI runs it twice: on PostgreSQL and Redis, and on a
fresh machine (SQLite and the embedded Redis). A test runs on both unless what it tests exists
only on PostgreSQL; it then says so with postgresql_only, and runs in the PostgreSQL run."""

import pytest
from django.db import connection, connections


def postgresql_only(reason: str) -> pytest.MarkDecorator:
    """Run the test on PostgreSQL only, for `reason`: what it tests that other engines do not
    have. Never for a failure on another engine that the code should handle."""
    return pytest.mark.skipif(
        connections["default"].vendor != "postgresql", reason=f"needs PostgreSQL: {reason}"
    )


def integer_column_overflow() -> tuple[int, str]:
    """The largest value an integer column of the default database holds (PostgreSQL's
    integer; SQLite's integers, 64-bit whatever the column says), and the error that writing
    one more raises, as a set-aside reason starts: PostgreSQL refuses it, SQLite's driver
    refuses a larger Python int before sending it."""
    if connections["default"].vendor == "postgresql":
        return 2**31 - 1, "DataError: integer out of range"
    return 2**63 - 1, "OverflowError: Python int too large to convert to SQLite INTEGER"


def refuse_rows(
    *, name: str, table: str, where: str, operation: str = "INSERT", data_error: bool = False
) -> None:
    """Make the default database refuse the rows of `table` that match `where` (SQL on NEW)
    on `operation`, by a BEFORE trigger: the row-level refusal both engines have. The statement
    writing such a row fails whole, with an IntegrityError whose message is `name` (a violated
    constraint, which PostgreSQL would name and SQLite would not), or with `data_error` a
    DataError (a value the database cannot hold): `name` on PostgreSQL, "string or blob too
    big" on SQLite, whose trigger makes a value past its length limit. Made in the test's
    transaction, the trigger goes with its rollback."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            code = "invalid_parameter_value" if data_error else "check_violation"
            cursor.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"RAISE EXCEPTION '{name}' USING ERRCODE = '{code}'; END $$"
            )
            cursor.execute(
                f"CREATE TRIGGER {name} BEFORE {operation} ON {table} FOR EACH ROW "
                f"WHEN ({where}) EXECUTE FUNCTION {name}()"
            )
        else:
            refusal = (
                "SELECT zeroblob(2147483647)" if data_error else f"SELECT RAISE(ABORT, '{name}')"
            )
            cursor.execute(
                f"CREATE TRIGGER {name} BEFORE {operation} ON {table} FOR EACH ROW "
                f"WHEN {where} BEGIN {refusal}; END"
            )
