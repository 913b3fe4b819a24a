"""The Django admin: jobs, schedules (with their occurrences), executions and run limits.
Importing the modules registers them."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from batchjobs.auth import LockoutAdminLoginForm

from . import (
    audit,
    backfills,
    calendars,
    dependencies,
    executions,
    jobs,
    limits,
    notifications,
    occurrences,
    schedules,
    tags,
)

admin.site.site_header = _("batchjobs")
admin.site.site_title = _("batchjobs")
admin.site.index_title = _("Jobs, schedules and executions")
# Says why a login is refused when the login lockout cannot be checked.
admin.site.login_form = LockoutAdminLoginForm
# The index leads with a link to the dashboard (executions admin: dashboard/).
admin.site.index_template = "admin/batchjobs/index.html"

__all__ = [
    "audit",
    "backfills",
    "calendars",
    "dependencies",
    "executions",
    "jobs",
    "limits",
    "notifications",
    "occurrences",
    "schedules",
    "tags",
]
