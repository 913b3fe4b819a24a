"""Text the database can store: PostgreSQL refuses NUL characters, and UTF-8 has no lone
surrogates."""

from typing import Any


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unstorable_text_path(data: Any) -> str | None:
    """The path ("params.rows[2]", "" for the top) of the first key or string the database
    cannot store, or None. Iterative: the parser already accepted the nesting depth."""
    pending: list[tuple[str, Any]] = [("", data)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            if not _storable(value):
                return path
        elif isinstance(value, dict):
            for key, item in value.items():
                child = f"{path}.{key}" if path else str(key)
                if not _storable(key):
                    return path
                pending.append((child, item))
        elif isinstance(value, list):
            pending.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
    return None
