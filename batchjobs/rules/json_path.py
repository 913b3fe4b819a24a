"""The one JSON path dialect: where a value is in a JSON document.

Used by HTTP jobs' assertions ($.data.items[0].ready) and by the batch HTTP reader (where a
page's items and its next link are). The grammar:

    path     := "$" step* | shorthand
    step     := "." key | "[" index "]" | "['" any key "']" | '["' any key '"]'
    key      := a letter or "_", then letters, digits, "_" or "-"
    index    := digits (a list position, from 0)

Shorthand: a path that does not start with "$" is read as if "$." (or "$" before a "[") came
first, so "data.items" is "$.data.items" and "[0].id" is "$[0].id"; the empty path, like "$",
is the document itself. Batch jobs written with dotted paths keep working; the grammar and
the parser are the same either way. A list position is always written in brackets: "items[0]",
not "items.0".
"""

import re
from typing import Any, Final

from django.utils.translation import gettext

_STEP = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]|\[['\"]([^'\"]+)['\"]\]")
_FIRST_KEY = re.compile(r"[A-Za-z_][\w-]*")
_DOTTED_INDEX = re.compile(r"\.\d")

JsonPath = list[str | int]


class _Missing:
    """What json_path_value returns where the path leads to nothing (null is a value)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


def json_path_parse(path: str) -> JsonPath:
    """'$.items[0].id' (or the shorthand 'items[0].id') -> ['items', 0, 'id']; ValueError
    naming the part that cannot be read."""
    tokens: JsonPath = []
    if path.startswith("$"):
        position = 1
    elif (first := _FIRST_KEY.match(path)) is not None:
        tokens.append(first.group())
        position = first.end()
    elif not path or path.startswith("["):
        position = 0
    else:
        raise ValueError(
            gettext("cannot read the JSON path at %(part)s; write e.g. $.status or $.items[0].id")
            % {"part": repr(path)}
        )
    while position < len(path):
        match = _STEP.match(path, position)
        if not match:
            rest = path[position:]
            if _DOTTED_INDEX.match(rest):
                message = gettext(
                    "cannot read the JSON path at %(part)s; a list index goes in brackets: [0]"
                )
            else:
                message = gettext("cannot read the JSON path at %(part)s")
            raise ValueError(message % {"part": repr(rest)})
        key, index, quoted = match.groups()
        tokens.append(int(index) if index is not None else (key or quoted))
        position = match.end()
    return tokens


def json_path_value(document: Any, path: JsonPath) -> Any:
    """The value at `path` (parsed) in `document`, or MISSING if there is none: a key that a
    dict lacks, a position past a list's end, or a step into a value of another kind (a key of
    a list, a position in a string)."""
    for token in path:
        if isinstance(token, int):
            if not isinstance(document, list) or token >= len(document):
                return MISSING
        elif not isinstance(document, dict) or token not in document:
            return MISSING
        document = document[token]
    return document
