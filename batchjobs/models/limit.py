"""Limits shared by every worker: runs at once per queue or per target host, and calls per
second per target host. A job's own limit is `BatchJob.max_running`."""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from batchjobs.rules import bounds


class LimitScope(models.TextChoices):
    QUEUE = "queue", "Queue (every job sent to it)"
    HOST = "host", "Target host (every HTTP job calling it)"


class RunLimit(models.Model):
    scope = models.CharField(max_length=8, choices=LimitScope.choices)
    name = models.CharField(
        max_length=255,
        help_text="The queue's name, or the host as the URLs name it (example.com, 10.0.0.5).",
    )
    max_running = models.PositiveIntegerField(
        validators=bounds.between(1, bounds.MAX_RUNNING_LIMIT),
        null=True,
        blank=True,
        help_text="At most this many executions running at once, across all workers.",
    )
    max_per_second = models.PositiveIntegerField(
        validators=bounds.between(1, bounds.MAX_PER_SECOND_LIMIT),
        null=True,
        blank=True,
        help_text="Hosts only: at most this many calls started in any one second.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "run limit"
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
            parts.append(f"{self.max_running} running")
        if self.max_per_second is not None:
            parts.append(f"{self.max_per_second}/s")
        return f"{self.scope} {self.name}: {', '.join(parts)}"

    @property
    def key(self) -> str:
        return limit_key(self.scope, self.name)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.max_running is None and self.max_per_second is None:
            errors["max_running"] = "Set a number of runs at once, calls per second, or both."
        if self.scope == LimitScope.QUEUE and self.max_per_second is not None:
            errors["max_per_second"] = "Calls per second apply to target hosts, not to queues."
        if self.scope == LimitScope.HOST and self.name != self.name.strip().lower():
            errors["name"] = "Write the host in lower case, without spaces."
        if errors:
            raise ValidationError(errors)


def limit_key(scope: str, name: str) -> str:
    """How a limit is named where executions wait for it: "host:example.com", "job:12"."""
    return f"{scope}:{name}"
