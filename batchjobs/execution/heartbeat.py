"""The heartbeat of the attempts (and partitions) running in a worker process: the runner
and the batch job adapter both use it, so it lives apart from either."""

import logging
import os
import threading
import time

from django.conf import settings
from django.db import connections
from django.db.models.functions import Now

from batchjobs.models import ExecutionStatus, StepExecution

from .lifecycle import execution_heartbeat, executions_heartbeat
from .timeout import cooperative, request_stop

logger = logging.getLogger(__name__)


class _Heartbeat:
    """One daemon thread per worker process beats for every attempt running in it, so that a
    run costs no thread start; progress reported by the job rides along with the beat."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[int, tuple[int, tuple[int, int | None] | None]] = {}
        self._interruptible: set[int] = set()
        self._steps: set[int] = set()
        self._owner_pid: int | None = None

    def watch(self, execution_id: int, attempt: int, *, interruptible: bool) -> None:
        """Beat for the attempt; if `interruptible`, an operator's stop interrupts it (a batch
        job instead stops itself at its next chunk boundary)."""
        with self._lock:
            self._running[execution_id] = (attempt, None)
            if interruptible:
                self._interruptible.add(execution_id)
            self._start_thread()

    def watch_step(self, step_execution_id: int) -> None:
        """Beat for a partition running here, for the partitioned step's master to see."""
        with self._lock:
            self._steps.add(step_execution_id)
            self._start_thread()

    def unwatch_step(self, step_execution_id: int) -> None:
        with self._lock:
            self._steps.discard(step_execution_id)

    def _start_thread(self) -> None:
        if self._owner_pid != os.getpid():  # first use in this (possibly forked) process
            self._owner_pid = os.getpid()
            threading.Thread(target=self._loop, name="batchjobs-heartbeat", daemon=True).start()

    def progress(self, execution_id: int, done: int, total: int | None) -> None:
        with self._lock:
            if execution_id in self._running:
                self._running[execution_id] = (self._running[execution_id][0], (done, total))

    def unwatch(self, execution_id: int) -> None:
        with self._lock:
            self._running.pop(execution_id, None)
            self._interruptible.discard(execution_id)

    def _loop(self) -> None:
        while True:
            time.sleep(settings.BATCHJOBS_HEARTBEAT_SECONDS)
            with self._lock:
                running, interruptible = dict(self._running), set(self._interruptible)
                steps = list(self._steps)
            if not running and not steps:
                connections.close_all()  # idle: hold no database session (this thread's only)
                continue
            try:
                self._beat(running, interruptible, steps)
            except Exception:  # a database blip must not end the thread
                logger.exception("heartbeat failed")
                connections.close_all()

    def _beat(
        self,
        running: dict[int, tuple[int, tuple[int, int | None] | None]],
        interruptible: set[int],
        steps: list[int],
    ) -> None:
        """One statement for every attempt without news of progress (an I/O lane process has
        hundreds), one each for those that report progress (a handler's, a batch job's)."""
        silent = {pk: attempt for pk, (attempt, progress) in running.items() if progress is None}
        statuses: dict[int, ExecutionStatus | None] = {}
        if silent:
            statuses.update(executions_heartbeat(silent))
        for execution_id, (attempt, progress) in running.items():
            if progress is not None:
                statuses[execution_id] = execution_heartbeat(
                    execution_id=execution_id, attempt=attempt, progress=progress
                )
        for execution_id, status in statuses.items():
            if status == ExecutionStatus.STOPPING and execution_id in interruptible:
                request_stop(execution_id)
        if steps:
            StepExecution.objects.filter(pk__in=steps).update(heartbeat_at=Now())
        if cooperative():
            # Give the pooled connection back: the lane's few are for claims and outcomes.
            connections.close_all()


heartbeat = _Heartbeat()
