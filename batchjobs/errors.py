"""The one application error type, with the subclasses the API maps to 400, 404, 409 and 503."""

from collections.abc import Mapping


class BatchJobsError(Exception):
    """Base of every error a service raises on purpose."""


class InvalidInput(BatchJobsError):
    """Bad input; `field_errors` maps each offending field to its messages. Nothing was saved."""

    def __init__(self, field_errors: Mapping[str, list[str] | str]):
        self.field_errors = {
            field: [messages] if isinstance(messages, str) else list(messages)
            for field, messages in field_errors.items()
        }
        super().__init__(
            "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in self.field_errors.items())
        )


class NotFound(BatchJobsError):
    """The object named by an id or a name does not exist."""


class Conflict(BatchJobsError):
    """The request is valid but illegal in the object's current state."""


class Unavailable(BatchJobsError):
    """A store the request cannot do without (the shared cache, for rate limits and the login
    lockout) cannot be reached: the request is refused, never let through unchecked."""


class PermissionRequired(BatchJobsError):
    """The user may do the operation in general but not with this object: `field` names what
    needs the permission `permission` (the API answers 403)."""

    def __init__(self, message: str, *, field: str, permission: str):
        self.field, self.permission = field, permission
        super().__init__(message)
