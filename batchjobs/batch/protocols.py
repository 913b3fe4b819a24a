"""The contracts of readers, processors and writers (after Spring Batch's ItemReader & co.)."""

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class ItemStream(Protocol):
    """A reader or writer whose position survives a restart.

    open(context): called once before the first item, with the step's saved execution context
        (empty on a first run); a restartable stream seeks to the position it saved there.
    update(context): called just before each chunk commits; store the position reached, in
        JSON-serialisable values. It is saved in the same transaction as the chunk's writes,
        so a restart resumes exactly after the last committed chunk.
    close(): called once when the step ends, whatever the outcome.
    """

    def open(self, context: dict) -> None: ...
    def update(self, context: dict) -> None: ...
    def close(self) -> None: ...


class ItemReader(Protocol):
    """read() returns the next item, or None when the input is exhausted.

    It is called from one thread. Raising an exception counts as a read failure, which the
    step's skip policy may skip (read_skip_count) or which fails the step.
    """

    def read(self) -> Any | None: ...


class ItemProcessor(Protocol):
    """process(item) returns the item to write (possibly transformed), or None to filter it
    out (filter_count). It must not have side effects: after a failed write the chunk is
    processed again item by item."""

    def process(self, item: Any) -> Any | None: ...


class ItemWriter(Protocol):
    """write(items) writes one chunk, inside the chunk's transaction on the `default`
    database: raising rolls the chunk back, and with it the checkpoint."""

    def write(self, items: list[Any]) -> None: ...


@runtime_checkable
class CountingReader(Protocol):
    """A reader that can tell how many items it has left: items_remaining() is called once,
    after open(context) (so from a restart's position, or within a partition's range), and
    the step's progress then shows done of that many. Return None when it cannot tell
    cheaply; a count a little off (a file's lines, for its records) is fine. Without it a
    step shows what it did and its rate, with no total and no ETA."""

    def items_remaining(self) -> int | None: ...
