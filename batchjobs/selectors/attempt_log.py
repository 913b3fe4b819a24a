"""The log lines of an attempt, read a page at a time after the last line a reader has, so that
a console following a running attempt asks only for what is new."""

from dataclasses import dataclass

from django.utils.translation import gettext as _

from batchjobs.errors import NotFound
from batchjobs.models import AttemptLogLine, AttemptStatus, BatchAttempt

# The most lines one read returns, whatever is asked.
LINES_PER_READ_MAX = 1000
ATTEMPT_NUMBER_MAX = 32767  # a PositiveSmallIntegerField


def attempt_log_lines(
    attempt_id: int, after_number: int = 0, limit: int = 500
) -> list[AttemptLogLine]:
    """The attempt's lines numbered above `after_number`, in order, at most `limit` (bounded
    to 1..LINES_PER_READ_MAX). The next read goes on after the last line's number."""
    limit = max(1, min(limit, LINES_PER_READ_MAX))
    after_number = max(0, min(after_number, 2**31 - 1))
    return list(
        AttemptLogLine.objects.filter(attempt_id=attempt_id, number__gt=after_number)
        .order_by("number")
        .only("number", "logged_at", "level", "logger", "message")[:limit]
    )


@dataclass(frozen=True)
class AttemptLogPage:
    """One read of an attempt's log: its lines after a number, where the next read starts,
    the lines the attempt dropped beyond its cap, and whether it still runs (more may come)."""

    lines: list[AttemptLogLine]
    next_after: int
    dropped: int
    running: bool


def attempt_log_page(
    *, execution_id: int, attempt_number: int, after_number: int = 0, limit: int = 500
) -> AttemptLogPage:
    """attempt_log_lines of attempt `attempt_number` of the execution; NotFound if it has no
    such attempt."""
    attempt = None
    # Numbers past the columns' range (from a URL, say) name nothing, rather than fail the query.
    if 0 < execution_id < 2**63 and 0 < attempt_number <= ATTEMPT_NUMBER_MAX:
        attempt = (
            BatchAttempt.objects.filter(execution_id=execution_id, number=attempt_number)
            .only("pk", "status", "log_lines_dropped")
            .first()
        )
    if attempt is None:
        raise NotFound(
            _("execution %(id)s has no attempt %(number)s")
            % {"id": execution_id, "number": attempt_number}
        )
    lines = attempt_log_lines(attempt.pk, after_number=after_number, limit=limit)
    return AttemptLogPage(
        lines=lines,
        next_after=lines[-1].number if lines else max(0, after_number),
        dropped=attempt.log_lines_dropped,
        running=attempt.status == AttemptStatus.RUNNING,
    )
