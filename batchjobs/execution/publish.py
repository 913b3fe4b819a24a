"""Send execution messages. A message carries only the execution id; the row is the truth."""

from collections.abc import Iterable

from django.conf import settings

from batchjobs.models import BatchLog


def executions_publish(execution_ids: Iterable[int]) -> None:
    from batchjobs.tasks import execute

    rows = BatchLog.objects.filter(pk__in=list(execution_ids)).values_list(
        "pk", "job__queue", "job__priority", "job__timeout_seconds"
    )
    with execute.app.producer_or_acquire() as producer:
        for pk, queue, priority, timeout_seconds in rows:
            execute.apply_async(
                args=[pk],
                queue=queue,
                priority=priority,
                # Backstop for code the soft limit cannot interrupt: the pool kills the child.
                time_limit=timeout_seconds + settings.BATCHJOBS_HARD_TIMEOUT_GRACE_SECONDS,
                producer=producer,
            )
