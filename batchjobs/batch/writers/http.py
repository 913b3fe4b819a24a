"""The HTTP writer: each chunk posted as JSON through the hardened HTTP client, under an
idempotency key stable across retries and restarts."""

import hashlib
import json
import time
from collections.abc import Mapping

import requests
from django.core.serializers.json import DjangoJSONEncoder
from django.utils.translation import gettext

from batchjobs.http.client import http_call, request_error_masked
from batchjobs.models import BatchLog
from batchjobs.rules.masking import url_masked


class HttpWriteError(Exception):
    """The service answered a chunk with a status other than 2xx."""


def instance_execution_id(execution_id: int) -> int:
    """The first execution of the job instance `execution_id` belongs to: it stays the same
    across the instance's restarts, whose executions each have an id of their own."""
    instance_key = (
        BatchLog.objects.filter(pk=execution_id).values_list("instance_key", flat=True).first()
    )
    if not instance_key:
        return execution_id
    first = (
        BatchLog.objects.filter(instance_key=instance_key)
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )
    return first if first is not None else execution_id


def _step_label(step_context) -> str:
    """The step's name, and for a partition its name (or a digest of its context)."""
    partition = step_context.partition
    if not partition:
        return step_context.step_name
    label = (
        partition.get("name")
        or hashlib.sha256(json.dumps(partition, sort_keys=True, default=str).encode()).hexdigest()[
            :12
        ]
    )
    return f"{step_context.step_name}[{label}]"


class HttpWriter:
    """Posts each chunk as a JSON array through the hardened HTTP client, with
    `Idempotency-Key: <execution id>:<step>:<chunk number>` so the service can recognise a
    chunk sent again and not apply it twice.

    url: where chunks go; step: the StepContext the writer factory was called with (it names
    the execution and the step). Items must be JSON-serialisable (DjangoJSONEncoder: dates,
    decimals and UUIDs are). A status other than 2xx raises HttpWriteError; name it (and
    requests.ConnectionError) in the step's RetryPolicy to retry the chunk.

    The key is stable wherever the same chunk is sent again: a retry of the chunk, a new
    attempt of the execution, and a restart, because <execution id> is the id of the job
    instance's first execution (a restart has an id of its own) and the chunk number comes
    from the checkpoint (chunks committed + 1). In the step's partitions <step> is
    "step[partition]". When a failed chunk is scanned, each item is posted alone, as
    "<key>:<n>" for the n-th of them.
    """

    def __init__(
        self,
        url: str,
        *,
        step,
        headers: Mapping[str, str] | None = None,
        method: str = "POST",
        timeout_seconds: float = 30.0,
        name: str = "http_writer",
    ) -> None:
        self.url, self.method, self.timeout_seconds = url, method, timeout_seconds
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.key_prefix = f"{instance_execution_id(step.execution_id)}:{_step_label(step)}"
        self._state = f"{name}.chunks"
        self._chunks = 0
        self._first_size: int | None = None
        self._parts = 0

    def open(self, context: dict) -> None:
        self._chunks = context.get(self._state, 0)
        self._first_size, self._parts = None, 0

    def update(self, context: dict) -> None:
        self._chunks += 1
        context[self._state] = self._chunks
        self._first_size, self._parts = None, 0

    def close(self) -> None:
        self._first_size, self._parts = None, 0

    def idempotency_key(self, items: list) -> str:
        """The key of this write: the chunk's, or for an item of a scanned chunk, the chunk's
        and its place among the items written alone."""
        key = f"{self.key_prefix}:{self._chunks + 1}"
        if self._first_size is None:
            self._first_size = len(items)
        if len(items) == self._first_size:
            return key
        self._parts += 1
        return f"{key}:{self._parts}"

    def write(self, items: list) -> None:
        if not items:
            return
        headers = {**self.headers, "Idempotency-Key": self.idempotency_key(items)}
        body = json.dumps(items, cls=DjangoJSONEncoder).encode()
        try:
            response = http_call(
                method=self.method, url=self.url, headers=headers, body=body,
                deadline=time.monotonic() + self.timeout_seconds,
            )  # fmt: skip
        except requests.RequestException as error:
            raise request_error_masked(error, url=self.url) from None
        if not 200 <= response.status < 300:
            raise HttpWriteError(
                gettext("%(method)s %(url)s (%(key)s): HTTP %(status)s: %(body)s")
                % {
                    "method": self.method,
                    "url": url_masked(self.url),
                    "key": headers["Idempotency-Key"],
                    "status": response.status,
                    "body": response.text()[:200],
                }
            )
