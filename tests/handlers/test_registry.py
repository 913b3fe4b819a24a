import uuid

import jsonschema
import pytest

from batchjobs.errors import InvalidInput
from batchjobs.handlers import registry
from batchjobs.handlers.registry import (
    handler,
    handler_get,
    handler_names,
    handler_params_errors,
    handlers_all,
)
from batchjobs.models import BatchJob, BatchLog, Trigger
from batchjobs.services.executions import execution_start
from batchjobs.services.jobs import job_create

BUNDLED = {
    "noop",
    "sleep",
    "fail",
    "sql",
    "purge_logs",
    "examples.customers_upsert",
    "examples.sync_customers_to_warehouse",
    "examples.customer_report",
    "examples.concurrent_queries",
}


@pytest.fixture
def fresh_name():
    """A handler name no one uses; whatever a test registers under it is dropped afterwards
    (the registry is process-wide)."""
    names = []

    def make() -> str:
        names.append(f"tests.registry.{uuid.uuid4().hex[:12]}")
        return names[-1]

    yield make
    for name in names:
        registry._REGISTRY.remove(name)


def test_handler_registers_the_function_with_its_schema_and_description(fresh_name):
    # given
    name = fresh_name()
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}

    # when
    @handler(name, schema=schema)
    def count_things(ctx, *, n=0):
        """Count things.

        More words that are not part of the description.
        """
        return {"n": n}

    # then
    registered = handler_get(name)
    assert registered.fn is count_things  # the decorator hands the function back unchanged
    assert registered.schema == schema
    assert registered.description == "Count things."
    assert name in handler_names()
    assert registered in handlers_all()


def test_explicit_description_wins_over_the_docstring(fresh_name):
    name = fresh_name()

    @handler(name, description="Told, not read.")
    def documented(ctx):
        """From the docstring."""

    assert handler_get(name).description == "Told, not read."


def test_handler_without_schema_accepts_any_object_and_nothing_else(fresh_name):
    name = fresh_name()

    @handler(name)
    def open_params(ctx, **params):
        return params

    assert handler_params_errors(name, {"anything": [1, 2], "goes": None}) == []
    assert handler_params_errors(name, ["not", "an", "object"]) == [
        "['not', 'an', 'object'] is not of type 'object'"
    ]


def test_registering_the_same_function_again_is_harmless(fresh_name):
    # given: a module imported twice registers its functions twice
    name = fresh_name()

    def twice(ctx):
        return None

    handler(name)(twice)

    # when
    handler(name)(twice)

    # then
    assert handler_get(name).fn is twice


def test_a_second_function_under_a_taken_name_is_refused(fresh_name):
    # given
    name = fresh_name()

    @handler(name)
    def first(ctx):
        return "first"

    # when
    def second(ctx):
        return "second"

    with pytest.raises(ValueError, match=f"handler '{name}' is already registered"):
        handler(name)(second)

    # then
    assert handler_get(name).fn is first


def test_a_bundled_name_cannot_be_taken_over():
    def impostor(ctx):
        return None

    with pytest.raises(ValueError, match="handler 'noop' is already registered"):
        handler("noop")(impostor)
    assert handler_get("noop").fn is not impostor


def test_an_invalid_schema_is_refused_at_registration(fresh_name):
    name = fresh_name()

    with pytest.raises(jsonschema.SchemaError):

        @handler(name, schema={"type": "object", "properties": {"n": {"type": "integr"}}})
        def broken(ctx, *, n):
            return n

    assert handler_get(name) is None


def test_the_bundled_handlers_are_registered_with_a_description():
    assert BUNDLED <= set(handler_names())
    for name in BUNDLED:
        registered = handler_get(name)
        assert registered.description, name
        jsonschema.Draft202012Validator.check_schema(registered.schema)


def test_an_unknown_name_is_not_registered():
    assert handler_get("no.such.handler") is None


@pytest.mark.parametrize(
    ("name", "params", "messages"),
    [
        ("sleep", {"seconds": -1}, ["seconds: -1 is less than the minimum of 0"]),
        ("sleep", {"seconds": 86401}, ["seconds: 86401 is greater than the maximum of 86400"]),
        ("sleep", {}, ["'seconds' is a required property"]),
        (
            "noop",
            {"verbose": True},
            ["Additional properties are not allowed ('verbose' was unexpected)"],
        ),
        ("sql", {"database": "warehouse", "statement": ""}, ["statement: '' should be non-empty"]),
        (
            "purge_logs",
            {"older_than_days": 0, "batch_size": 0},
            [
                "batch_size: 0 is less than the minimum of 1",
                "older_than_days: 0 is less than or equal to the minimum of 0",
            ],
        ),
        (
            "examples.customers_upsert",
            {
                "upsert": [
                    {"email": "not-an-address", "name": ""},
                    {"email": "b@example.com", "name": "B", "active": "yes"},
                ],
                "delete": [3],
            },
            [
                "delete.0: 3 is not of type 'string'",
                "upsert.0.email: 'not-an-address' does not match '^[^@\\\\s]+@[^@\\\\s]+$'",
                "upsert.0.name: '' should be non-empty",
                "upsert.1.active: 'yes' is not of type 'boolean'",
            ],
        ),
        (
            "examples.concurrent_queries",
            {"queries": [], "max_workers": 17},
            [
                "max_workers: 17 is greater than the maximum of 16",
                "queries: [] should be non-empty",
            ],
        ),
    ],
)
def test_params_errors_name_the_field_in_path_order(name, params, messages):
    assert handler_params_errors(name, params) == messages


def test_valid_params_have_no_errors():
    assert handler_params_errors("sleep", {"seconds": 0.5}) == []
    assert handler_params_errors("noop", {}) == []
    assert (
        handler_params_errors(
            "examples.customers_upsert",
            {"upsert": [{"email": "a@example.com", "name": "A", "active": False}], "delete": []},
        )
        == []
    )


@pytest.mark.django_db
def test_job_create_refuses_params_that_break_the_schema_naming_the_field():
    # when
    with pytest.raises(InvalidInput) as refused:
        job_create(
            name="bad-sleep", kind="handler", handler_name="sleep", params={"seconds": "ten"}
        )

    # then
    assert refused.value.field_errors == {"params": ["seconds: 'ten' is not of type 'number'"]}
    assert not BatchJob.objects.exists()


@pytest.mark.django_db
def test_job_create_refuses_an_unknown_handler_naming_the_field():
    with pytest.raises(InvalidInput) as refused:
        job_create(name="ghost", kind="handler", handler_name="no.such.handler")

    (message,) = refused.value.field_errors["handler_name"]
    assert message.startswith("No handler named 'no.such.handler'; registered: ")
    assert "examples.customers_upsert" in message
    assert not BatchJob.objects.exists()


@pytest.mark.django_db
def test_run_params_are_checked_against_the_schema_on_top_of_the_job_defaults():
    # given
    job = job_create(name="sleepy", kind="handler", handler_name="sleep", params={"seconds": 1})

    # when
    with pytest.raises(InvalidInput) as refused:
        execution_start(job=job, trigger=Trigger.API, params={"seconds": -5})

    # then
    assert refused.value.field_errors == {"params": ["seconds: -5 is less than the minimum of 0"]}
    assert not BatchLog.objects.exists()
    execution = execution_start(job=job, trigger=Trigger.API, params={"seconds": 2})
    assert execution.params == {"seconds": 2}
