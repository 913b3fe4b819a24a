"""The one request body format: JSON, bounded in size and storable as text."""

import io
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.parsers import JSONParser

from batchjobs.rules.text import unstorable_text_path


class BoundedJSONParser(JSONParser):
    """JSON of at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes (DRF reads the stream past Django's
    own check), parsed without a RecursionError on absurd nesting, and refused if a string holds
    what the database cannot store (NUL, a lone surrogate): each of these is a 400, not a 500."""

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise exceptions.ParseError(
                _("The request body is larger than %(limit)s bytes.") % {"limit": limit},
                code="too_large",
            )
        try:
            data = super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError as exc:
            raise exceptions.ParseError(_("JSON parse error - nested too deeply.")) from exc
        where = unstorable_text_path(data)
        if where is not None:
            raise exceptions.ValidationError(
                {where or "body": [_("Text may not contain NUL characters or lone surrogates.")]}
            )
        return data
