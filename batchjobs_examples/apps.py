from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BatchJobsExamplesConfig(AppConfig):
    """The demo and worked examples; installed when BATCHJOBS_EXAMPLES is on (`make run`,
    the tests), left out of a production install."""

    name = "batchjobs_examples"
    verbose_name = _("Batch jobs examples")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Importing registers the @handler and @batch_job functions with the product's
        # registries, as the modules named in BATCHJOBS_HANDLER_MODULES are.
        from . import batch_jobs, handlers  # noqa: F401
