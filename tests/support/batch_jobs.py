"""Batch jobs for the engine tests, registered through tests/support/fault_handlers.py. They
write to the examples' customer table, a table of their own (the tests run with
BATCHJOBS_EXAMPLES)."""

import time

from django.db import IntegrityError, connection
from django.utils import timezone

from batchjobs.batch import (
    ItemListener,
    JobBuilder,
    RetryPolicy,
    SkipPolicy,
    batch_job,
    chunk_step,
    decider,
    partition_step,
    tasklet_step,
)
from batchjobs.batch.writers import DjangoWriter, PostgresCopyWriter
from batchjobs_examples.models import ExampleCustomer

TABLE = ExampleCustomer._meta.db_table


class NumbersReader:
    """Reads the integers 1..count, restartably; `bad` numbers raise ValueError on read."""

    def __init__(self, count: int, bad=(), delay: float = 0.0, start: int = 1):
        self.count, self.bad, self.delay, self.start = count, set(bad), delay, start
        self.position = 0

    def open(self, context):
        self.position = context.get("numbers.position", 0)

    def update(self, context):
        context["numbers.position"] = self.position

    def close(self):
        pass

    def read(self):
        if self.position >= self.count:
            return None
        self.position += 1
        if self.delay:
            time.sleep(self.delay)
        number = self.start + self.position - 1
        if number in self.bad:
            raise ValueError(f"bad number {number}")
        return number


class CustomerWriter:
    """Writes numbers as ExampleCustomer rows; `poison` numbers make the write fail."""

    def __init__(self, poison=()):
        self.poison = set(poison)

    def write(self, items):
        for number in items:
            if number in self.poison:
                raise KeyError(f"poison {number}")
        ExampleCustomer.objects.bulk_create(
            ExampleCustomer(email=f"n{n}@example.com", name=f"n{n}") for n in items
        )


def _numbers(ctx):
    return NumbersReader(ctx.params.get("count", 10), bad=ctx.params.get("bad", ()),
                         delay=ctx.params.get("delay", 0.0))  # fmt: skip


def _writer(ctx):
    return CustomerWriter(poison=ctx.params.get("poison", ()))


def _odd_only(number):
    return number if number % 2 else None


@batch_job("tests.numbers", identifying=["run"])
def numbers_job():
    load = chunk_step(
        "load", reader=_numbers, writer=_writer, chunk_size=5,
        skip=SkipPolicy((ValueError, KeyError), limit=3),
    )  # fmt: skip
    return JobBuilder().start(load).next(tasklet_step("report", _report)).build()


def _report(ctx):
    ctx.job_context["customers"] = ExampleCustomer.objects.count()


@batch_job("tests.odd_numbers")
def odd_numbers_job():
    return (
        JobBuilder()
        .start(
            chunk_step("load", reader=_numbers, processor=[_odd_only], writer=_writer, chunk_size=4)
        )
        .build()
    )


def _fail_or_not(ctx):
    if ctx.params.get("fail"):
        raise RuntimeError("first step failed on purpose")


def _mark(name):
    def tasklet(ctx):
        ctx.job_context.setdefault("ran", []).append(name)

    return tasklet


@batch_job("tests.flow")
def flow_job():
    first = tasklet_step("first", _fail_or_not)
    recover, report = (
        tasklet_step("recover", _mark("recover")),
        tasklet_step("report", _mark("report")),
    )
    return (
        JobBuilder().start(first)
        .on("FAILED").to(recover)
        .from_(first).on("*").to(report)
        .from_(recover).on("*").end()
        .build()
    )  # fmt: skip


@batch_job("tests.decider")
def decider_job():
    choose = decider(
        "choose", lambda context, last: "BIG" if context.get("size", 0) > 5 else "SMALL"
    )
    sizer = tasklet_step("size", lambda ctx: ctx.job_context.update(size=ctx.params["size"]))
    return (
        JobBuilder().start(sizer).next(choose)
        .from_(choose).on("BIG").to(tasklet_step("big", _mark("big")))
        .from_(choose).on("SMALL").to(tasklet_step("small", _mark("small")))
        .build()
    )  # fmt: skip


_flaky_calls = {"count": 0}


class FlakyWriter(CustomerWriter):
    def write(self, items):
        _flaky_calls["count"] += 1
        if _flaky_calls["count"] % 2:
            raise ConnectionError("transient")
        super().write(items)


@batch_job("tests.retry")
def retry_job():
    return JobBuilder().start(chunk_step(
        "load", reader=_numbers, writer=lambda ctx: FlakyWriter(), chunk_size=5,
        retry=RetryPolicy((ConnectionError,), attempts=3),
    )).build()  # fmt: skip


class ItemEvents(ItemListener):
    """Records what an item listener is told, in order, in `events`."""

    events: list[tuple] = []

    def after_read(self, item):
        self.events.append(("read", item))

    def on_read_error(self, error):
        self.events.append(("read error", str(error)))

    def after_process(self, item, result):
        self.events.append(("processed", item, result))

    def on_process_error(self, item, error):
        self.events.append(("process error", item, type(error).__name__))

    def after_write(self, items):
        self.events.append(("written", list(items)))


_checked_calls: dict[int, int] = {}


def _checked(number):
    """5 is invalid (skipped); 3 fails once with a transient error (retried)."""
    _checked_calls[number] = _checked_calls.get(number, 0) + 1
    if number == 5:
        raise ValueError("5 is invalid")
    if number == 3 and _checked_calls[number] == 1:
        raise ConnectionError("transient")
    return number


@batch_job("tests.item_listeners")
def item_listeners_job():
    load = chunk_step(
        "load", reader=_numbers, processor=[_odd_only, _checked], writer=_writer, chunk_size=3,
        skip=SkipPolicy((ValueError,), limit=3), retry=RetryPolicy((ConnectionError,), attempts=2),
        listeners=(ItemEvents(),),
    )  # fmt: skip
    return JobBuilder().start(load).build()


def _customer_row(number):
    return {"email": f"n{number}@example.com", "name": f"n{number}", "active": True,
            "updated_at": timezone.now()}  # fmt: skip


def _copy_writer(ctx):
    # COPY on PostgreSQL, where overlap_writes applies; elsewhere the ORM, chunk by chunk.
    if connection.vendor == "postgresql":
        return PostgresCopyWriter(ExampleCustomer, ["email", "name", "active", "updated_at"])
    return DjangoWriter(ExampleCustomer)


def _copied_numbers(*, overlap: bool):
    load = chunk_step(
        "load", reader=_numbers, processor=_customer_row, writer=_copy_writer, chunk_size=5,
        skip=SkipPolicy((ValueError, IntegrityError), limit=3), overlap_writes=overlap,
    )  # fmt: skip
    return JobBuilder().start(load).build()


@batch_job("tests.copied_numbers", identifying=["run"])
def copied_numbers_job():
    return _copied_numbers(overlap=False)


@batch_job("tests.copied_numbers_overlapped", identifying=["run"])
def copied_numbers_overlapped_job():
    return _copied_numbers(overlap=True)


def _ranges(ctx, grid_size):
    count = ctx.params["count"]
    size = -(-count // grid_size)
    return {f"p{i}": {"start": 1 + i * size, "count": max(0, min(size, count - i * size))}
            for i in range(grid_size)}  # fmt: skip


def _partition_reader(ctx):
    partition, params = ctx.partition, ctx.params
    return NumbersReader(partition["count"], start=partition["start"],
                         delay=params.get("delay", 0.0), bad=params.get("bad", ()))  # fmt: skip


@batch_job("tests.partitioned")
def partitioned_job():
    worker = chunk_step("load_partition", reader=_partition_reader, writer=_writer, chunk_size=10)
    return (
        JobBuilder()
        .start(partition_step("load", partitioner=_ranges, step=worker, grid_size=4))
        .build()
    )


def customer_numbers() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT email FROM {TABLE}")
        return sorted(int(email[1:].split("@")[0]) for (email,) in cursor.fetchall())
