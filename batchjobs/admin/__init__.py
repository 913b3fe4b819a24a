"""The Django admin: jobs, schedules and executions. Importing the modules registers them."""

from django.contrib import admin

from . import audit, executions, jobs, notifications, schedules

admin.site.site_header = "batchjobs"
admin.site.site_title = "batchjobs"
admin.site.index_title = "Jobs, schedules and executions"
# The index leads with a link to the dashboard (executions admin: dashboard/).
admin.site.index_template = "admin/batchjobs/index.html"

__all__ = ["audit", "executions", "jobs", "notifications", "schedules"]
