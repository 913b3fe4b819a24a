"""The invariants every fault scenario ends by checking (DESIGN.md §4)."""

from django.db.models import Count

from batchjobs.models import AttemptStatus, BatchAttempt, BatchLog, ExecutionStatus
from batchjobs.models.execution import RUNNING_STATUSES

from .sink import Sink


def check_invariants(*, sink: Sink | None = None, settled: bool = True) -> None:
    duplicates = (
        BatchLog.objects.exclude(schedule=None)
        .values("schedule", "scheduled_for")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert not duplicates.exists(), f"a fire ran twice: {list(duplicates)}"
    running = (
        BatchAttempt.objects.filter(status=AttemptStatus.RUNNING)
        .values("execution")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert not running.exists(), f"two attempts running at once: {list(running)}"
    if settled:
        stuck = BatchLog.objects.filter(status__in=(*RUNNING_STATUSES, ExecutionStatus.QUEUED))
        assert not stuck.exists(), f"stuck after recovery: {list(stuck.values('pk', 'status'))}"
        assert not BatchAttempt.objects.filter(status=AttemptStatus.RUNNING).exists()
    if sink is not None:
        concurrent = {key: n for key, n in sink.max_in_flight.items() if n > 1}
        assert not concurrent, f"two attempts of one key in flight at once: {concurrent}"
