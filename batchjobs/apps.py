from django.apps import AppConfig


class BatchJobsConfig(AppConfig):
    name = "batchjobs"
    verbose_name = "Batch jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from batchjobs.handlers.registry import load_handler_modules

        load_handler_modules()
