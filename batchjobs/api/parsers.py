"""The one request body format: JSON, bounded in size and storable as text."""

import io
from typing import Any

from django.conf import settings
from rest_framework import exceptions
from rest_framework.parsers import JSONParser


class BoundedJSONParser(JSONParser):
    """JSON of at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes (DRF reads the stream past Django's
    own check), parsed without a RecursionError on absurd nesting, and refused if a string holds
    what the database cannot store (NUL, a lone surrogate): each of these is a 400, not a 500."""

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise exceptions.ParseError(
                f"The request body is larger than {limit} bytes.", code="too_large"
            )
        try:
            data = super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError as exc:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from exc
        where = unstorable_text_path(data)
        if where is not None:
            raise exceptions.ValidationError(
                {where or "body": ["Text may not contain NUL characters or lone surrogates."]}
            )
        return data


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
