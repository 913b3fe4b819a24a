"""The registry base both registries use: a name belongs to the function that took it first,
and parameters are judged by one schema check (partial for a job's saved defaults)."""

import jsonschema
import pytest

from batchjobs.rules.registry import ParameterSchema, Registry

SCHEMA = {
    "type": "object",
    "properties": {
        "day": {"type": "string"},
        "rows": {"type": "array", "items": {"type": "integer"}},
    },
    "required": ["day"],
}


def first():
    """The first one.

    Not part of the description."""


def second():
    pass


def test_a_name_stays_with_the_function_that_registered_it():
    # given
    registry: Registry[str] = Registry("widget")
    registry.add("w", "entry", source=first)

    # when
    registry.add("w", "entry again", source=first)  # the same module imported twice
    with pytest.raises(ValueError, match="widget 'w' is already registered by <function first"):
        registry.add("w", "impostor", source=second)

    # then
    assert registry.get("w") == "entry again"
    assert registry.names() == ["w"]


def test_entries_come_sorted_by_name_and_a_removed_name_is_free_again():
    registry: Registry[int] = Registry("widget")
    registry.add("b", 2, source=first)
    registry.add("a", 1, source=second)

    registry.remove("b")
    registry.add("b", 3, source=second)

    assert registry.entries() == [1, 3]
    assert registry.get("missing") is None


def test_errors_name_the_path_of_each_bad_parameter_in_order():
    parameters = ParameterSchema.checked(SCHEMA)

    errors = parameters.errors({"day": 3, "rows": [1, "two"]})

    assert errors == ["day: 3 is not of type 'string'", "rows.1: 'two' is not of type 'integer'"]
    assert parameters.errors({"day": "mon"}) == []


def test_partial_parameters_may_leave_out_what_is_required_but_not_break_types():
    parameters = ParameterSchema.checked(SCHEMA)

    assert parameters.errors({}) == ["'day' is a required property"]
    assert parameters.errors({}, partial=True) == []
    assert parameters.errors({"rows": ["x"]}, partial=True) == [
        "rows.0: 'x' is not of type 'integer'"
    ]


def test_no_schema_means_any_object_and_a_broken_schema_is_refused():
    assert ParameterSchema.checked(None).errors({"anything": 1}) == []
    assert ParameterSchema.checked(None).errors([1]) == ["[1] is not of type 'object'"]

    with pytest.raises(jsonschema.SchemaError):
        ParameterSchema.checked({"type": "integr"})
