"""The OpenAPI schema: every operation documents the errors it can answer, in one shape."""

from django.utils.translation import gettext as _
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse

from .serializers import ErrorSerializer, ValidationErrorSerializer

BODY_METHODS = ("POST", "PUT", "PATCH")


class ApiAutoSchema(AutoSchema):
    """Adds the error responses to each operation: 401, 403, 429 and 503 always; 400 when it
    takes a body or query parameters; 404 when its path names an object or the view declares
    `not_found`; 409 when the view declares `conflict` (when it happens); 415 when it takes
    a body."""

    def get_tags(self) -> list[str]:
        """One tag per resource (jobs, schedules, executions, ...); the aliases in their own."""
        if self.is_deprecated():
            return ["seed-era aliases"]
        parts = self.path.strip("/").split("/")
        if len(parts) > 2 and parts[1] == "v1":
            return [parts[2]]
        return super().get_tags()

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, description in self._error_statuses():
            if code not in responses:
                serializer = ValidationErrorSerializer if code == "400" else ErrorSerializer
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(serializer, description), code, direction=direction
                )
        return responses

    def _error_statuses(self) -> list[tuple[str, str]]:
        statuses = [
            ("401", _("Not authenticated: log in, or send 'Authorization: Token <key>'.")),
            ("403", _("Authenticated, but without the permission this operation needs.")),
            ("429", _("Too many requests: throttled; see Retry-After.")),
            ("503", _("The rate limiting store (Redis) cannot be reached: refused, try again.")),
        ]
        takes_body = self.method in BODY_METHODS
        takes_query = bool(self._get_filter_parameters()) or any(
            parameter.get("in") == "query" for parameter in self._get_parameters()
        )
        if takes_body or takes_query:
            statuses.append(("400", _("Bad input: `errors` names each bad field.")))
        not_found = getattr(self.view, "not_found", "")
        if "{" in self.path or not_found:
            reason = not_found or _("the id names none.")
            statuses.append(("404", _("No such object: %(reason)s") % {"reason": reason}))
        conflict = getattr(self.view, "conflict", "")
        if conflict:
            statuses.append(("409", _("Conflict: %(reason)s") % {"reason": conflict}))
        if takes_body:
            statuses.append(("415", _("The body is not application/json.")))
        return statuses
