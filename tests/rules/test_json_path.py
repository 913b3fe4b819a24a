"""The one JSON path dialect: HTTP job assertions and the batch HTTP reader read paths alike."""

import pytest

from batchjobs.rules.json_path import MISSING, json_path_parse, json_path_value

DOCUMENT = {"data": {"items": [{"id": 7, "ready": True}], "note": None}, "name": "abc"}


@pytest.mark.parametrize(
    ("path", "tokens"),
    [
        ("$", []),
        ("", []),
        ("$.data.items[0].id", ["data", "items", 0, "id"]),
        ("$['odd key'].x", ["odd key", "x"]),
        ("$[2]", [2]),
        ("$.with-dash_1", ["with-dash_1"]),
    ],
)
def test_parse(path, tokens):
    assert json_path_parse(path) == tokens


@pytest.mark.parametrize(
    ("shorthand", "full"),
    [
        ("data.items", "$.data.items"),
        ("data.items[0].id", "$.data.items[0].id"),
        ("[0].id", "$[0].id"),
        ("results", "$.results"),
    ],
)
def test_a_path_without_the_dollar_is_the_same_path_with_it(shorthand, full):
    assert json_path_parse(shorthand) == json_path_parse(full)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("$..x", r"at '\.\.x'"),
        ("$.items.0", r"at '\.0'; a list index goes in brackets"),
        ("items.0", r"a list index goes in brackets"),
        (".x", r"write e\.g\. \$\.status"),
        ("$.items[x]", r"at '\[x\]'"),
        ("$.a b", r"at ' b'"),
    ],
)
def test_unreadable_paths_are_refused_naming_the_part(path, message):
    with pytest.raises(ValueError, match=message):
        json_path_parse(path)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("$", DOCUMENT),
        ("$.data.items[0].ready", True),
        ("data.items[0].id", 7),
        ("$.data.note", None),  # null is a value, not a missing one
        ("$.data.items[1]", MISSING),
        ("$.data.missing", MISSING),
        ("$.data.items.id", MISSING),  # a key of a list
        ("$.data[0]", MISSING),  # a position in an object
        ("$.name[0]", MISSING),  # a position in a string: not a JSON step
    ],
)
def test_value(path, value):
    assert json_path_value(DOCUMENT, json_path_parse(path)) == value
