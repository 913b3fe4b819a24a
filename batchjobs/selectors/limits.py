"""Run limits as the admin and the API list them: each with how many executions it holds
waiting and how many of its executions run now, counted as the limits count them
(batchjobs.execution.limits: runs of the queue's jobs, or of the jobs calling the host)."""

from django.db.models import (
    Case,
    F,
    Func,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Concat
from django.utils.translation import gettext as _

from batchjobs.errors import NotFound
from batchjobs.models import BatchLog, ExecutionStatus, LimitScope, RunLimit
from batchjobs.models.execution import RUNNING_STATUSES


def _count(executions: QuerySet[BatchLog]) -> Subquery:
    counted = executions.order_by().annotate(count=Func(F("pk"), function="COUNT")).values("count")
    return Subquery(counted, output_field=IntegerField())


def limit_list() -> QuerySet[RunLimit]:
    """Every limit with `waiting` (QUEUED, held by it) and `running` (its runs now)."""
    running = BatchLog.objects.filter(status__in=RUNNING_STATUSES)
    # The key as RunLimit.key spells it ("host:example.com"), in SQL.
    key = Concat(OuterRef("scope"), Value(":"), OuterRef("name"))
    # `held_by` not empty: the partial index of held executions then serves the count.
    held = BatchLog.objects.filter(status=ExecutionStatus.QUEUED).exclude(held_by="")
    return RunLimit.objects.annotate(
        waiting=Coalesce(_count(held.filter(held_by=key)), 0),
        running=Coalesce(
            Case(
                When(
                    scope=LimitScope.QUEUE,
                    then=_count(running.filter(job__queue=OuterRef("name"))),
                ),
                When(
                    scope=LimitScope.HOST,
                    then=_count(running.filter(job__target_host=OuterRef("name"))),
                ),
                output_field=IntegerField(),
            ),
            0,
        ),
    ).order_by("scope", "name")


def limit_get(*, limit_id: int) -> RunLimit:
    limit = limit_list().filter(pk=limit_id).first()
    if limit is None:
        raise NotFound(_("no run limit %(id)s") % {"id": limit_id})
    return limit
