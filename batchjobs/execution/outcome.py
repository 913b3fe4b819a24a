from dataclasses import dataclass
from typing import Any

from batchjobs.models import AttemptStatus


@dataclass(frozen=True)
class AttemptOutcome:
    """How one attempt ended, as the runner hands it to execution_finish_attempt."""

    status: AttemptStatus
    result: Any = None
    error: str = ""
    retryable: bool = False
    http_status: int | None = None
    response_excerpt: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status == AttemptStatus.SUCCEEDED
