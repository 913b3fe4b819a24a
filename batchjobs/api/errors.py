"""The one place where errors become HTTP answers (DESIGN.md §6).

Every error body has `detail` (a sentence) and `code`; a 400 also has `errors`, mapping each bad
field (or `body` for an unreadable body, `non_field_errors` for the whole object) to its messages.
Sentences and messages are in the request's language (LocaleMiddleware: the language cookie, then
Accept-Language); codes and field names are the protocol and never change.

    InvalidInput, DRF's ValidationError, ParseError   -> 400
    NotFound, Http404                                 -> 404
    Conflict                                          -> 409
    PermissionRequired                                -> 403, naming the field
    Unavailable (a store the request needs is away)   -> 503
    any other BatchJobsError                          -> 400

Registered as REST_FRAMEWORK["EXCEPTION_HANDLER"].
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

from batchjobs.errors import (
    BatchJobsError,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionRequired,
    Unavailable,
)
from batchjobs.services.definition_serializers import NON_FIELD, field_errors

BODY_FIELD = "body"


def _invalid(errors: dict[str, list[str]]) -> Response:
    return Response(
        {"detail": _("Invalid input."), "code": "invalid", "errors": errors},
        status=status.HTTP_400_BAD_REQUEST,
    )


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, BatchJobsError):
        set_rollback()
        if isinstance(exc, InvalidInput):
            return _invalid(exc.field_errors)
        if isinstance(exc, NotFound):
            return Response(
                {"detail": str(exc), "code": "not_found"}, status=status.HTTP_404_NOT_FOUND
            )
        if isinstance(exc, Conflict):
            return Response(
                {"detail": str(exc), "code": "conflict"}, status=status.HTTP_409_CONFLICT
            )
        if isinstance(exc, PermissionRequired):
            return Response(
                {
                    "detail": str(exc),
                    "code": "permission_denied",
                    "errors": {exc.field: [str(exc)]},
                },
                status=status.HTTP_403_FORBIDDEN,
            )
        if isinstance(exc, Unavailable):
            return Response(
                {"detail": str(exc), "code": "unavailable"},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        return Response({"detail": str(exc), "code": "invalid"}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoValidationError):  # a model's clean() reached outside a service
        set_rollback()
        errors = exc.message_dict if hasattr(exc, "error_dict") else {NON_FIELD: exc.messages}
        return _invalid(errors)

    response = exception_handler(exc, context)
    if response is None:
        return None  # a bug: Django answers 500 and logs it
    if isinstance(exc, exceptions.ValidationError):
        response.data = {
            "detail": _("Invalid input."),
            "code": "invalid",
            "errors": field_errors(exc.detail),
        }
    elif isinstance(exc, exceptions.ParseError):
        response.data = {
            "detail": str(exc.detail),
            "code": exc.detail.code if hasattr(exc.detail, "code") else "parse_error",
            "errors": {BODY_FIELD: [str(exc.detail)]},
        }
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
        response.data = {
            "detail": str(detail) or response.status_text,
            "code": getattr(detail, "code", None) or _code_for(response.status_code),
        }
    return response


def _code_for(status_code: int) -> str:
    return {404: "not_found", 405: "method_not_allowed", 429: "throttled"}.get(status_code, "error")
