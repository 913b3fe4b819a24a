"""The Django admin: jobs, schedules and executions. Importing the modules registers them."""

from django.contrib import admin

from . import executions, jobs, schedules

admin.site.site_header = "batchjobs"
admin.site.site_title = "batchjobs"
admin.site.index_title = "Jobs, schedules and executions"

__all__ = ["executions", "jobs", "schedules"]
