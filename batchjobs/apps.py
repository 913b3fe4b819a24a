from importlib import import_module

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BatchJobsConfig(AppConfig):
    name = "batchjobs"
    # The admin's breadcrumbs read "Home › <this> › Batch jobs": not the model's name again.
    verbose_name = _("Console")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from batchjobs.execution.hooks import execution_ended_hook_register
        from batchjobs.handlers.registry import load_handler_modules
        from batchjobs.scheduling.backfill import backfill_execution_ended
        from batchjobs.services.notifications import notifications_execution_ended

        load_handler_modules()
        # The purge_logs handler lives with retention, above the handlers' layer.
        import_module("batchjobs.execution.retention")
        # Execution sits below services: it tells the outcome through this hook (DESIGN.md §5).
        execution_ended_hook_register(notifications_execution_ended)
        # An ended backfill run frees a slot: the backfill creates its next run at once.
        execution_ended_hook_register(backfill_execution_ended)
