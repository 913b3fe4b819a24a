"""The Django admin: jobs, schedules (with their occurrences), executions and run limits.
Importing the modules registers them."""

from django.contrib import admin

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

# The site (its home, its menu, the upcoming runs) is batchjobs.admin_site's.
# Says why a login is refused when the login lockout cannot be checked.
admin.site.login_form = LockoutAdminLoginForm

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
