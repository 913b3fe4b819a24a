"""Permissions that depend on what an object does, not only on its model: checked by the
services, so the API, the admin and the CLI refuse alike."""

from django.utils.translation import gettext as _

from batchjobs.errors import PermissionRequired
from batchjobs.models import JobKind

# The built-in `sql` handler runs any statement on the databases it is opened to: saving or
# starting a job that uses it takes a permission of its own (migration 0006).
USE_SQL_HANDLER = "batchjobs.use_sql_handler"
HANDLER_PERMISSIONS = {"sql": USE_SQL_HANDLER}


def job_handler_permission_check(*, kind: str, handler_name: str, user=None) -> None:
    """Raise PermissionRequired unless `user` may save or start a job of this kind and handler.
    No user means the system itself (beat, the relay, a retry): it runs what was allowed."""
    if user is None or kind != JobKind.HANDLER:
        return
    permission = HANDLER_PERMISSIONS.get(handler_name)
    if permission and not user.has_perm(permission):
        raise PermissionRequired(
            _("the %(handler)s handler needs the permission %(permission)s")
            % {"handler": repr(handler_name), "permission": permission},
            field="handler_name",
            permission=permission,
        )
