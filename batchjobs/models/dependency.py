from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .labels import labelled, named


class DependencyCondition(models.TextChoices):
    """Which ends of the upstream's execution start the downstream job."""

    SUCCESS = "success", _("On success (COMPLETED)")
    FAILURE = "failure", _("On failure (FAILED)")
    ALWAYS = "always", _("Always (whenever it ends: COMPLETED, FAILED, STOPPED or ABANDONED)")


class UpstreamMode(models.TextChoices):
    """How a job with several upstream jobs waits for them."""

    ANY = "any", _("Any: each upstream end that meets its condition starts a run")
    ALL = (
        "all",
        _("All (fan-in): one run once every upstream met its condition for the same logical time"),
    )


@named(_("job dependency"), _("job dependencies"))
class JobDependency(models.Model):
    """An edge of the job graph: when an execution of `upstream` ends meeting `condition`,
    `downstream` starts, with the upstream's result and logical time handed on. The start is
    exactly-once by BatchLog.start_key (DESIGN.md §4, invariant 13)."""

    upstream = labelled(
        _("upstream job"),
        models.ForeignKey(
            "batchjobs.BatchJob",
            on_delete=models.CASCADE,
            related_name="downstream_edges",
            help_text=_("The job whose end starts the downstream job."),
        ),
    )
    downstream = labelled(
        _("downstream job"),
        models.ForeignKey(
            "batchjobs.BatchJob",
            on_delete=models.CASCADE,
            related_name="upstream_edges",
            help_text=_("The job started when the upstream job ends as the condition says."),
        ),
    )
    condition = labelled(
        _("condition"),
        models.CharField(
            max_length=8,
            choices=DependencyCondition.choices,
            default=DependencyCondition.SUCCESS,
            help_text=_("Which ends of the upstream execution start the downstream job."),
        ),
    )
    created_at = labelled(
        _("created at"),
        models.DateTimeField(auto_now_add=True, help_text=_("When it was created.")),
    )

    class Meta:
        ordering = ["upstream__name", "downstream__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["upstream", "downstream"], name="dependency_edge_unique"
            ),
            models.CheckConstraint(
                condition=~Q(upstream=models.F("downstream")), name="dependency_not_on_itself"
            ),
            models.CheckConstraint(
                condition=Q(condition__in=DependencyCondition.values),
                name="dependency_condition_known",
            ),
        ]

    def __str__(self) -> str:
        return gettext("%(upstream)s → %(downstream)s (%(condition)s)") % {
            "upstream": self.upstream.name,
            "downstream": self.downstream.name,
            "condition": self.get_condition_display(),
        }
