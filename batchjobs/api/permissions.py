"""Who may call what: Django's model permissions, per view and method.

Reading needs `view_<model>`; creating, changing and deleting need `add_`, `change_`, `delete_`;
starting, stopping, restarting and abandoning executions (and test-firing a job) need
`batchjobs.run_batchjob`. Superusers hold every permission.
"""

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import BasePermission

VIEW_JOB = "batchjobs.view_batchjob"
ADD_JOB = "batchjobs.add_batchjob"
CHANGE_JOB = "batchjobs.change_batchjob"
DELETE_JOB = "batchjobs.delete_batchjob"
RUN_JOB = "batchjobs.run_batchjob"
VIEW_SCHEDULE = "batchjobs.view_batchschedule"
ADD_SCHEDULE = "batchjobs.add_batchschedule"
CHANGE_SCHEDULE = "batchjobs.change_batchschedule"
DELETE_SCHEDULE = "batchjobs.delete_batchschedule"
VIEW_EXECUTION = "batchjobs.view_batchlog"
VIEW_LIMIT = "batchjobs.view_runlimit"
ADD_LIMIT = "batchjobs.add_runlimit"
CHANGE_LIMIT = "batchjobs.change_runlimit"
DELETE_LIMIT = "batchjobs.delete_runlimit"
VIEW_CALENDAR = "batchjobs.view_calendar"
ADD_CALENDAR = "batchjobs.add_calendar"
CHANGE_CALENDAR = "batchjobs.change_calendar"
DELETE_CALENDAR = "batchjobs.delete_calendar"

READ_METHODS = ("GET", "HEAD", "OPTIONS")


class HasRequiredPermissions(BasePermission):
    """The user is authenticated and holds every permission the view names for the method in
    `required_permissions`, a mapping like {"GET": (VIEW_JOB,), "POST": (ADD_JOB,)}. HEAD and
    OPTIONS need what GET needs. A method the view does not name passes, to be answered 405."""

    message = _("You do not have the permission this operation needs.")

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        method = "GET" if request.method in READ_METHODS else request.method
        needed = view.required_permissions.get(method, ())
        return request.user.has_perms(needed)


class SchemaAccess(BasePermission):
    """The schema and Swagger UI: public when BATCHJOBS_API_SCHEMA_PUBLIC, else logged-in users."""

    def has_permission(self, request, view) -> bool:
        if settings.BATCHJOBS_API_SCHEMA_PUBLIC:
            return True
        return bool(request.user and request.user.is_authenticated)
