"""Limits shared by every worker: runs at once per queue or per target host, and calls per
second per target host. A job's own limit is `BatchJob.max_running`."""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from batchjobs.rules import bounds

from .labels import labelled, named


class LimitScope(models.TextChoices):
    QUEUE = "queue", _("Queue (every job sent to it)")
    HOST = "host", _("Target host (every HTTP job calling it)")


@named(plural=_("run limits"))
class RunLimit(models.Model):
    scope = labelled(_("scope"), models.CharField(max_length=8, choices=LimitScope.choices))
    name = labelled(
        _("name"),
        models.CharField(
            max_length=255,
            help_text=_(
                "The queue's name, or the host as the URLs name it (example.com, 10.0.0.5)."
            ),
        ),
    )
    max_running = labelled(
        _("max running"),
        models.PositiveIntegerField(
            validators=bounds.between(1, bounds.MAX_RUNNING_LIMIT),
            null=True,
            blank=True,
            help_text=_("At most this many executions running at once, across all workers."),
        ),
    )
    max_per_second = labelled(
        _("max per second"),
        models.PositiveIntegerField(
            validators=bounds.between(1, bounds.MAX_PER_SECOND_LIMIT),
            null=True,
            blank=True,
            help_text=_("Hosts only: at most this many calls started in any one second."),
        ),
    )
    updated_at = labelled(_("updated at"), models.DateTimeField(auto_now=True))

    class Meta:
        verbose_name = _("run limit")
        ordering = ["scope", "name"]
        constraints = [
            models.UniqueConstraint(fields=["scope", "name"], name="run_limit_unique"),
            models.CheckConstraint(
                condition=Q(scope__in=LimitScope.values), name="run_limit_scope_known"
            ),
            models.CheckConstraint(
                condition=Q(max_running__isnull=False) | Q(max_per_second__isnull=False),
                name="run_limit_sets_something",
            ),
        ]

    def __str__(self) -> str:
        parts = []
        if self.max_running is not None:
            parts.append(gettext("%(count)s running") % {"count": self.max_running})
        if self.max_per_second is not None:
            parts.append(f"{self.max_per_second}/s")
        return f"{self.scope} {self.name}: {', '.join(parts)}"

    @property
    def key(self) -> str:
        return limit_key(self.scope, self.name)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.max_running is None and self.max_per_second is None:
            errors["max_running"] = gettext(
                "Set a number of runs at once, calls per second, or both."
            )
        if self.scope == LimitScope.QUEUE and self.max_per_second is not None:
            errors["max_per_second"] = gettext(
                "Calls per second apply to target hosts, not to queues."
            )
        if self.scope == LimitScope.HOST and self.name != self.name.strip().lower():
            errors["name"] = gettext("Write the host in lower case, without spaces.")
        if errors:
            raise ValidationError(errors)


def limit_key(scope: str, name: str) -> str:
    """How a limit is named where executions wait for it: "host:example.com", "job:12"."""
    return f"{scope}:{name}"
