"""The readers and writers of batchjobs.batch: each one on its own (open, read or write, update,
reopen from the saved context as a restarted step would), and through the engine in-process."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connections, transaction
from werkzeug import Response

from batchjobs.batch import JobBuilder, RetryPolicy, SkipPolicy, batch_job, chunk_step
from batchjobs.batch.readers import (
    BadLine,
    BadLineReport,
    CsvReader,
    FileRange,
    HttpJsonReader,
    HttpReadError,
    JsonLinesReader,
    QuerysetReader,
    SqlCursorReader,
    file_ranges,
)
from batchjobs.batch.readers import files as file_readers
from batchjobs.batch.writers import (
    CsvWriter,
    DjangoWriter,
    HttpWriteError,
    HttpWriter,
    NotPostgreSQL,
    PostgresCopyWriter,
    copy_text,
)
from batchjobs.http.guard import BlockedDestination
from batchjobs.models import (
    ExecutionStatus,
)
from batchjobs.services import operator
from batchjobs_examples.models import ExampleCustomer, WarehouseCustomer
from tests.support.batch_jobs import NumbersReader
from tests.support.factories import batch_start
from tests.support.runs import run_in_process, step_execution

BOTH = ["default", "warehouse"]
postgresql_only = pytest.mark.skipif(
    connections["default"].vendor != "postgresql",
    reason="COPY ... FROM STDIN is PostgreSQL's; other databases have no COPY",
)


def read_all(reader) -> list:
    items = []
    while (item := reader.read()) is not None:
        items.append(item)
    return items


def read_with_skips(reader) -> tuple[list, list[BadLine]]:
    """Read to the end as the engine does with a skip policy on BadLine."""
    items, bad = [], []
    while True:
        try:
            item = reader.read()
        except BadLine as error:
            bad.append(error)
            continue
        if item is None:
            return items, bad
        items.append(item)


def opened(stream, context: dict | None = None):
    stream.open(context if context is not None else {})
    return stream


def checkpoint(stream) -> dict:
    context: dict = {}
    stream.update(context)
    return context


# Failure injection for the jobs below, set by a test and cleared after it.
FAIL_AT: dict[str, object] = {"value": None}


@pytest.fixture(autouse=True)
def no_failure_injected():
    FAIL_AT["value"] = None
    yield
    FAIL_AT["value"] = None


def _fail_at(item):
    if FAIL_AT["value"] is not None and item[next(iter(item))] == FAIL_AT["value"]:
        raise RuntimeError(f"failing on purpose at {FAIL_AT['value']}")
    return item


# --- CSV reader ---------------------------------------------------------------------------------


def test_csv_reader_maps_the_header_and_parses_quoting(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_bytes(
        b"\xef\xbb\xbfE-mail,Full name,active\r\n"
        b'a@example.com,"Doe, Jane",true\r\n'
        b"\r\n"
        b'b@example.com,"two\nlines",false\r\n'
        b"c@example.com,Zo\xc3\xab,true\r\n"
    )

    reader = opened(CsvReader(path, rename={"E-mail": "email", "Full name": "name"}))

    assert read_all(reader) == [
        {"email": "a@example.com", "name": "Doe, Jane", "active": "true"},
        {"email": "b@example.com", "name": "two\nlines", "active": "false"},
        {"email": "c@example.com", "name": "Zoë", "active": "true"},
    ]
    assert reader.read() is None


def test_csv_reader_dialect_options_and_fieldnames_without_header(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("1;'x;y'\n2;z\n")

    reader = opened(CsvReader(path, header=False, fieldnames=["id", "text"], delimiter=";",
                              quotechar="'"))  # fmt: skip

    assert read_all(reader) == [{"id": "1", "text": "x;y"}, {"id": "2", "text": "z"}]


def test_csv_reader_refuses_a_rename_of_a_missing_column(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"not in the header: \['emial'\]"):
        opened(CsvReader(path, rename={"emial": "email"}))


def test_csv_reader_raises_bad_lines_with_their_line_numbers_and_reads_on(tmp_path):
    # given wrong field counts (lines 3 and 6), bytes that are not UTF-8 (line 5) and a
    # malformed quote under strict parsing (line 7); line 4 is a record spanning two lines
    path = tmp_path / "bad.csv"
    path.write_bytes(
        b'id,name\n1,one\n2,two,extra\n3,"three\nand more"\n4,f\xffur\n5\n6,"six"x\n7,seven\n'
    )
    reader = opened(CsvReader(path, strict=True))

    # when
    items, bad = read_with_skips(reader)

    # then
    assert [item["id"] for item in items] == ["1", "3", "7"]
    assert [(error.line, error.reason.split(":")[0]) for error in bad] == [
        (3, "expected 2 fields, found 3"),
        (6, "bytes that are not valid utf-8"),
        (7, "expected 2 fields, found 1"),
        (8, "malformed CSV"),
    ]
    assert bad[0].text == "2,two,extra\n"


def test_csv_reader_restart_resumes_at_the_saved_byte_offset(tmp_path):
    # given a file whose records span lines, so only a byte offset can resume exactly
    path = tmp_path / "many.csv"
    with path.open("w", newline="") as file:
        file.write("id,note\n")
        for n in range(1, 101):
            file.write(f'{n},"note\n{n}"\n' if n % 7 == 0 else f"{n},note {n}\n")
        file.write("101,oops,extra\n")
    first = opened(CsvReader(path))
    before = [first.read() for _ in range(40)]
    saved = checkpoint(first)
    first.close()

    # when
    resumed = opened(CsvReader(path), saved)
    after, bad = read_with_skips(resumed)

    # then every record once, and line numbers still those of the whole file
    assert [int(item["id"]) for item in before + after] == list(range(1, 101))
    assert saved["csv.offset"] == len(
        b"id,note\n"
        + b"".join(
            f'{n},"note\n{n}"\n'.encode() if n % 7 == 0 else f"{n},note {n}\n".encode()
            for n in range(1, 41)
        )
    )
    assert saved["csv.line"] == 1 + 40 + 40 // 7
    assert [error.line for error in bad] == [1 + 100 + 100 // 7 + 1]


def read_with_checkpoints(reader) -> list:
    """Each item (or BadLine's line and reason) with the checkpoint after it, to the end."""
    steps = []
    while True:
        try:
            item = reader.read()
        except BadLine as error:
            item = (error.line, error.reason, error.text)
        if item is None:
            return steps
        steps.append((item, checkpoint(reader)))


@pytest.mark.parametrize("batch_bytes", [1, 7, 40])
def test_csv_reader_reads_the_same_whatever_the_batches_of_lines(tmp_path, monkeypatch,
                                                                 batch_bytes):  # fmt: skip
    # given records that span lines, blank lines, bad lines and undecodable bytes, read in
    # batches of lines that end anywhere: inside a record, right before a bad line...
    path = tmp_path / "mixed.csv"
    path.write_bytes(
        b'id,note\n1,"a\nb"\n\n2,two\n3,x,extra\n4,f\xffur\n5,"c\n\nd"\n6,six\n7,"unclosed\n'
    )
    whole = read_with_checkpoints(opened(CsvReader(path)))

    # when
    monkeypatch.setattr(file_readers, "LINE_BATCH_BYTES", batch_bytes)
    batched = read_with_checkpoints(opened(CsvReader(path)))

    # then the same items, bad lines and checkpoints, and each checkpoint resumes exactly
    assert batched == whole
    assert [step[0]["id"] for step in whole if isinstance(step[0], dict)] == [
        "1", "2", "5", "6", "7",
    ]  # fmt: skip
    assert [step[0][:2] for step in whole if isinstance(step[0], tuple)] == [
        (6, "expected 2 fields, found 3"), (7, "bytes that are not valid utf-8"),
    ]  # fmt: skip
    for index, (_, saved) in enumerate(whole):
        resumed = read_with_checkpoints(opened(CsvReader(path), saved))
        assert resumed == whole[index + 1 :]


def test_file_ranges_read_in_small_batches_of_lines(tmp_path, monkeypatch):
    path = tmp_path / "ranges.csv"
    path.write_text("id\n" + "".join(f"{n}\n" for n in range(1, 200)))
    monkeypatch.setattr(file_readers, "LINE_BATCH_BYTES", 16)
    ids = [
        int(item["id"])
        for file_range in file_ranges(path, 5)
        for item in read_all(opened(CsvReader(path, range=file_range)))
    ]
    assert ids == list(range(1, 200))


def test_csv_reader_blames_an_undecodable_line_on_the_record_that_took_it(tmp_path):
    # given a malformed record (lines 2-3) whose second line does not decode, then a good one
    path = tmp_path / "swallowed.csv"
    path.write_bytes(b'id,name\n1,"a\n\xff"x\n2,two\n')

    # when
    items, bad = read_with_skips(opened(CsvReader(path, strict=True)))

    # then the malformed record is the one bad line; the record after it is read
    assert [(error.line, error.reason.split(":")[0]) for error in bad] == [(2, "malformed CSV")]
    assert items == [{"id": "2", "name": "two"}]


def test_csv_reader_refuses_a_checkpoint_past_the_end_of_the_file(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("a\n1\n")
    with pytest.raises(ValueError, match="was replaced or truncated"):
        opened(CsvReader(path), {"csv.offset": 999, "csv.line": 50})


def test_file_ranges_split_at_line_starts_and_keep_absolute_line_numbers(tmp_path):
    # given 1,000 records and one bad line, number 778
    path = tmp_path / "big.csv"
    lines = ["id,value"] + [f"{n},{'x' * (n % 13)}" for n in range(1, 1001)]
    lines[777] = "777"
    path.write_text("\n".join(lines) + "\n")

    # when split in 4 and read range by range
    ranges = file_ranges(path, 4)
    read, bad = [], []
    for file_range in ranges:
        items, errors = read_with_skips(opened(CsvReader(path, range=file_range.__dict__)))
        read += items
        bad += errors

    # then
    data = path.read_bytes()
    assert len(ranges) == 4 and ranges[0].start == 0 and ranges[-1].end is None
    assert all(data[r.start - 1 : r.start] == b"\n" for r in ranges[1:])
    assert all(r.lines_before == data[: r.start].count(b"\n") for r in ranges)
    assert [int(item["id"]) for item in read] == [n for n in range(1, 1001) if n != 777]
    assert [error.line for error in bad] == [778]


def test_file_ranges_of_a_small_file_are_fewer_than_asked(tmp_path):
    path = tmp_path / "tiny.csv"
    path.write_text("id\n1\n")
    ranges = file_ranges(path, 8)
    assert ranges == [FileRange(0, 3, 0), FileRange(3, None, 1)]
    assert [read_all(opened(CsvReader(path, range=r))) for r in ranges] == [[], [{"id": "1"}]]


# --- JSON lines reader --------------------------------------------------------------------------


def test_json_lines_reader_skips_blank_lines_reports_bad_ones_and_restarts(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"n": 1}\n\n{"n": 2}\n{"n": \n{"n": 3, "s": "\xc3\xa9"}\n\xff\n{"n": 4}\n')
    first = opened(JsonLinesReader(path))
    assert first.read() == {"n": 1}
    assert first.read() == {"n": 2}
    saved = checkpoint(first)
    with pytest.raises(BadLine) as bad:
        first.read()
    assert bad.value.line == 4

    resumed = opened(JsonLinesReader(path), saved)
    items, errors = read_with_skips(resumed)

    assert items == [{"n": 3, "s": "é"}, {"n": 4}]
    assert [error.line for error in errors] == [4, 6]


def test_json_lines_reader_in_small_batches_of_lines(tmp_path, monkeypatch):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"n": 1}\n\n{"n": 2}\n\xff\n{"n": 3}\n')
    monkeypatch.setattr(file_readers, "LINE_BATCH_BYTES", 3)
    first = opened(JsonLinesReader(path))
    assert first.read() == {"n": 1}
    saved = checkpoint(first)
    assert saved == {"jsonl.offset": 9, "jsonl.line": 1}

    items, errors = read_with_skips(opened(JsonLinesReader(path), saved))

    assert items == [{"n": 2}, {"n": 3}]
    assert [(error.line, error.reason) for error in errors] == [
        (4, "bytes that are not valid utf-8")
    ]


# --- queryset and SQL readers -------------------------------------------------------------------


def customers(count: int, *, prefix: str = "c") -> list[ExampleCustomer]:
    return ExampleCustomer.objects.bulk_create(
        ExampleCustomer(email=f"{prefix}{n:03d}@example.com", name=f"Customer {n}")
        for n in range(1, count + 1)
    )


@pytest.mark.django_db
def test_queryset_reader_pages_by_key_with_one_query_per_page(django_assert_num_queries):
    created = customers(25)
    reader = opened(QuerysetReader(ExampleCustomer.objects.all(), page_size=10))

    with django_assert_num_queries(3):  # 10 + 10 + 5: a short page is known to be the last
        items = read_all(reader)

    assert [c.pk for c in items] == sorted(c.pk for c in created)


@pytest.mark.django_db
def test_queryset_reader_resumes_after_the_saved_key_even_when_earlier_rows_went():
    created = sorted(customers(25), key=lambda c: c.pk)
    first = opened(QuerysetReader(ExampleCustomer.objects.all(), page_size=10))
    before = [first.read() for _ in range(12)]
    saved = checkpoint(first)
    assert saved == {"queryset.last_key": created[11].pk}

    # rows before the checkpoint deleted in between move no boundary (OFFSET paging would)
    ExampleCustomer.objects.filter(pk__in=[c.pk for c in created[:5]]).delete()
    resumed = opened(QuerysetReader(ExampleCustomer.objects.all(), page_size=10), saved)

    assert [c.pk for c in before + read_all(resumed)] == [c.pk for c in created]


@pytest.mark.django_db
def test_queryset_reader_over_values_and_another_key():
    customers(7)
    values = ExampleCustomer.objects.values("id", "email")
    by_pk = read_all(opened(QuerysetReader(values, page_size=3)))
    by_email = opened(QuerysetReader(ExampleCustomer.objects.all(), page_size=3, key="email"))
    first_four = [by_email.read().email for _ in range(4)]

    assert [row["email"] for row in by_pk] == [f"c{n:03d}@example.com" for n in range(1, 8)]
    assert checkpoint(by_email) == {"queryset.last_key": "c004@example.com"}
    assert first_four[-1] == "c004@example.com"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("key", ["id", None])
def test_sql_cursor_reader_streams_rows_and_resumes_by_key_or_by_count(key):
    created = sorted(customers(30), key=lambda c: c.pk)
    # Only the rows made here, whatever else the table holds (it is not this test's alone).
    query = (
        f"SELECT id, email FROM {ExampleCustomer._meta.db_table} "
        "WHERE id BETWEEN %s AND %s ORDER BY id"
    )
    bounds = [created[0].pk, created[-1].pk]
    first = opened(SqlCursorReader(query, bounds, key=key, fetch_size=4))
    try:
        before = [first.read() for _ in range(11)]
        saved = checkpoint(first)
    finally:
        first.close()
    resumed = opened(SqlCursorReader(query, bounds, key=key, fetch_size=4), saved)
    try:
        after = read_all(resumed)
    finally:
        resumed.close()

    assert saved == ({"sql.last_key": created[10].pk} if key else {"sql.count": 11})
    assert before[0] == {"id": created[0].pk, "email": created[0].email}
    assert [row["id"] for row in before + after] == [c.pk for c in created]


def _sql_reader(ctx):
    table = ExampleCustomer._meta.db_table
    return SqlCursorReader(
        f"SELECT email, id, name, active, updated_at FROM {table} ORDER BY id",
        key=ctx.params.get("key"), fetch_size=7,
    )  # fmt: skip


def _synced(row):
    return {**row, "synced_at": datetime(2030, 1, 1, tzinfo=UTC)}


@batch_job("tests.rw.sql_mark_synced")
def sql_mark_synced_job():
    return JobBuilder().start(chunk_step(
        "mark", reader=_sql_reader, processor=[_fail_at, _synced], chunk_size=5,
        writer=lambda ctx: DjangoWriter(ExampleCustomer, mode="upsert", unique_fields=["email"],
                                        update_fields=["synced_at"]),
    )).build()  # fmt: skip


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("key", ["id", None])
def test_sql_cursor_reader_in_a_step_whose_chunks_commit_on_the_same_database(key):
    # given a step that fails at the 18th row, after 3 chunks committed
    created = sorted(customers(23), key=lambda c: c.pk)
    FAIL_AT["value"] = created[17].email
    failed = run_in_process(batch_start("tests.rw.sql_mark_synced", {"key": key}))
    assert failed.status == ExecutionStatus.FAILED
    assert ExampleCustomer.objects.filter(synced_at__isnull=False).count() == 15

    # when restarted
    FAIL_AT["value"] = None
    restarted = run_in_process(operator.execution_restart(execution_id=failed.pk))

    # then the reader resumed at the checkpoint, behind the 15 rows committed
    assert restarted.status == ExecutionStatus.COMPLETED, restarted.error
    assert step_execution(restarted, "mark").read_count == 8
    assert not ExampleCustomer.objects.filter(synced_at__isnull=True).exists()


# --- HTTP reader --------------------------------------------------------------------------------


def test_http_json_reader_pages_by_number_until_a_short_page(httpserver):
    pages = {1: [1, 2], 2: [3, 4], 3: [5]}
    for page, ids in pages.items():
        httpserver.expect_request(
            "/items", query_string={"page": str(page), "per_page": "2"}
        ).respond_with_json({"data": {"items": [{"id": i} for i in ids]}})

    reader = opened(
        HttpJsonReader(
            httpserver.url_for("/items"),
            items_path="data.items",
            page_param="page",
            page_size=2,
            size_param="per_page",
        )
    )

    assert [item["id"] for item in read_all(reader)] == [1, 2, 3, 4, 5]
    # (the server is shared by the session: count this test's path only)
    assert len([request for request, _ in httpserver.log if request.path == "/items"]) == 3


def test_http_json_reader_follows_next_links_and_restarts_on_the_saved_page(httpserver):
    httpserver.expect_request("/feed").respond_with_json({"results": [1, 2], "next": "/feed/2"})
    httpserver.expect_request("/feed/2").respond_with_json(
        {"results": [3, 4], "next": httpserver.url_for("/feed/3")}
    )
    httpserver.expect_request("/feed/3").respond_with_json({"results": [5], "next": None})
    url = httpserver.url_for("/feed")
    first = opened(HttpJsonReader(url, items_path="results", next_path="next"))
    before = [first.read() for _ in range(3)]
    saved = checkpoint(first)
    first.close()
    assert saved == {"http.page_url": httpserver.url_for("/feed/2"), "http.index": 1}

    resumed = opened(HttpJsonReader(url, items_path="results", next_path="next"), saved)

    assert before + read_all(resumed) == [1, 2, 3, 4, 5]
    assert [request.path for request, _ in httpserver.log] == [
        "/feed", "/feed/2", "/feed/2", "/feed/3",
    ]  # fmt: skip


def test_http_json_reader_errors_and_retry(httpserver):
    httpserver.expect_request("/down").respond_with_data("busy", status=503)
    answers = iter([Response("busy", status=503), Response('[{"id": 1}]', status=200)])
    httpserver.expect_request("/flaky").respond_with_handler(lambda request: next(answers))
    with pytest.raises(HttpReadError, match="HTTP 503"):
        opened(HttpJsonReader(httpserver.url_for("/down"))).read()
    httpserver.clear_log()

    retrying = HttpJsonReader(
        httpserver.url_for("/flaky"), retry=RetryPolicy((HttpReadError,), attempts=2)
    )

    assert read_all(opened(retrying)) == [{"id": 1}]
    assert [response.status_code for _, response in httpserver.log] == [503, 200]


def test_http_json_reader_goes_through_the_ssrf_guard():
    with pytest.raises(BlockedDestination):
        opened(HttpJsonReader("http://10.1.2.3/items")).read()


# --- Django writer ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_django_writer_inserts_dicts_and_instances():
    DjangoWriter(ExampleCustomer).write(
        [{"email": "a@example.com", "name": "A"}, ExampleCustomer(email="b@example.com", name="B")]
    )
    assert sorted(ExampleCustomer.objects.values_list("email", "name")) == [
        ("a@example.com", "A"), ("b@example.com", "B"),
    ]  # fmt: skip
    with pytest.raises(IntegrityError):
        DjangoWriter(ExampleCustomer).write([{"email": "a@example.com", "name": "again"}])


@pytest.mark.django_db(databases=BOTH)
def test_django_writer_upserts_on_another_database_and_the_last_of_a_key_wins():
    # given
    writer = DjangoWriter(WarehouseCustomer, mode="upsert", unique_fields=["email"])
    stamp = datetime(2024, 5, 1, tzinfo=UTC)
    writer.write([{"email": "a@example.com", "name": "A", "source_updated_at": stamp}])

    # when a chunk updates that row, inserts another, and holds one key twice
    writer.write([
        {"email": "a@example.com", "name": "A2", "active": False, "source_updated_at": stamp},
        {"email": "b@example.com", "name": "B", "source_updated_at": stamp},
        {"email": "b@example.com", "name": "B2", "source_updated_at": stamp},
    ])  # fmt: skip

    # then
    assert writer.using == "warehouse"
    assert sorted(WarehouseCustomer.objects.values_list("email", "name", "active")) == [
        ("a@example.com", "A2", False), ("b@example.com", "B2", True),
    ]  # fmt: skip


def test_django_writer_refuses_an_upsert_without_a_conflict_target():
    with pytest.raises(ValueError, match="unique_fields"):
        DjangoWriter(ExampleCustomer, mode="upsert")


# --- PostgreSQL COPY writer ---------------------------------------------------------------------


def test_copy_text_escapes_and_formats_each_type():
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    text = copy_text([
        ["plain", "tab\there", "new\nline\r", "back\\slash", None],
        [True, False, None, True, False],
        [when, when, when.date(), None, timedelta(seconds=90)],
        [b"\x00\xff", {"a": [1]}, 7, 1.5, "é"],
    ])  # fmt: skip
    assert text.split("\n") == [
        "plain\tt\t2024-01-02T03:04:05+00:00\t\\\\x00ff",
        'tab\\there\tf\t2024-01-02T03:04:05+00:00\t{"a": [1]}',
        "new\\nline\\r\t\\N\t2024-01-02\t7",
        "back\\\\slash\tt\t\\N\t1.5",
        "\\N\tf\t90.0 seconds\té",
        "",
    ]


@postgresql_only
@pytest.mark.django_db
def test_copy_writer_round_trips_awkward_values_from_dicts_and_tuples():
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    writer = PostgresCopyWriter(
        ExampleCustomer, ["email", "name", "active", "updated_at", "synced_at"]
    )

    writer.write([
        {"email": "a@example.com", "name": "tab\tnew\nline \\ end", "active": False,
         "updated_at": when, "synced_at": None},
        {"email": "b@example.com", "name": "Zoë \r", "active": True, "updated_at": when,
         "synced_at": when, "ignored": "extra keys are fine"},
    ])  # fmt: skip
    writer.write([("c@example.com", "C", True, when, when)])

    assert list(
        ExampleCustomer.objects.order_by("email").values_list("name", "active", "synced_at")
    ) == [("tab\tnew\nline \\ end", False, None), ("Zoë \r", True, when), ("C", True, when)]


@postgresql_only
@pytest.mark.django_db
def test_copy_writer_rolls_back_with_its_transaction_and_raises_django_errors():
    now = datetime.now(UTC)
    writer = PostgresCopyWriter("batchjobs_examplecustomer", ["email", "name", "active",
                                                              "updated_at"])  # fmt: skip
    with pytest.raises(RuntimeError), transaction.atomic():
        writer.write([("gone@example.com", "G", True, now)])
        raise RuntimeError("the chunk fails after its COPY")
    writer.write([("kept@example.com", "K", True, now)])

    with pytest.raises(IntegrityError), transaction.atomic():
        writer.write([("kept@example.com", "twice", True, now)])
    assert list(ExampleCustomer.objects.values_list("email", flat=True)) == ["kept@example.com"]


@pytest.mark.skipif(
    connections["default"].vendor == "postgresql", reason="checks the refusal on non-PostgreSQL"
)
def test_copy_writer_refuses_other_databases_naming_the_portable_writer():
    with pytest.raises(NotPostgreSQL, match="needs PostgreSQL.*is sqlite.*Use DjangoWriter"):
        PostgresCopyWriter(ExampleCustomer, ["email"])


# --- CSV writer ---------------------------------------------------------------------------------


def test_csv_writer_writes_the_header_and_rows_from_dicts_and_sequences(tmp_path):
    path = tmp_path / "out.csv"
    writer = opened(CsvWriter(path, ["id", "name"], lineterminator="\n"))
    writer.write([{"id": 1, "name": "a, b", "other": "ignored"}])
    writer.write([(2, 'say "hi"')])
    saved = checkpoint(writer)
    writer.close()

    assert path.read_text() == 'id,name\n1,"a, b"\n2,"say ""hi"""\n'
    assert saved == {"csv_writer.offset": path.stat().st_size}


def test_csv_writer_truncates_to_the_checkpoint_on_restart(tmp_path):
    # given chunk 1 committed, chunk 2 reached the file but its transaction never committed
    path = tmp_path / "out.csv"
    writer = opened(CsvWriter(path, ["n"], lineterminator="\n"))
    writer.write([{"n": 1}, {"n": 2}])
    committed = checkpoint(writer)
    writer.write([{"n": 3}, {"n": 4}])
    checkpoint(writer)
    writer.close()
    assert path.read_text() == "n\n1\n2\n3\n4\n"

    # when the step restarts from the committed checkpoint and writes chunk 2 again
    restarted = opened(CsvWriter(path, ["n"], lineterminator="\n"), committed)
    restarted.write([{"n": 3}, {"n": 4}])
    checkpoint(restarted)
    restarted.close()

    # then no line is there twice
    assert path.read_text() == "n\n1\n2\n3\n4\n"


def test_csv_writer_drops_a_chunk_that_never_reached_update(tmp_path):
    path = tmp_path / "out.csv"
    writer = opened(CsvWriter(path, ["n"], lineterminator="\n", header=False))
    writer.write([(1,)])
    checkpoint(writer)
    writer.write([(2,)])  # the chunk's transaction fails before update()
    writer.close()
    assert path.read_text() == "1\n"


def test_csv_writer_refuses_a_checkpoint_past_the_end_of_the_file(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("n\n1\n")
    with pytest.raises(ValueError, match="lines the step committed are missing"):
        opened(CsvWriter(path, ["n"]), {"csv_writer.offset": 100})


def _csv_source(ctx):
    return CsvReader(ctx.params["source"])


@batch_job("tests.rw.csv_to_csv")
def csv_to_csv_job():
    return JobBuilder().start(chunk_step(
        "copy", reader=_csv_source, processor=_fail_at, chunk_size=4,
        writer=lambda ctx: CsvWriter(ctx.params["target"], ["id", "name"], lineterminator="\n"),
        skip=SkipPolicy((BadLine,), limit=5), listeners=(BadLineReport(limit=2),),
    )).build()  # fmt: skip


@pytest.mark.django_db
def test_csv_to_csv_counts_bad_lines_as_read_skips_and_restarts_without_duplicates(tmp_path):
    # given 20 records, with bad lines 5, 9 and 16 among them
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    lines = ["id,name"] + [f"{n},name {n}" for n in range(1, 21)]
    for bad in (4, 8, 15):
        lines[bad] = f"{bad},too,many"
    source.write_text("\n".join(lines) + "\n")
    good = [n for n in range(1, 21) if n not in (4, 8, 15)]
    params = {"source": str(source), "target": str(target)}

    # when the step fails at record 14, in its 3rd chunk, then is restarted
    FAIL_AT["value"] = "14"
    failed = run_in_process(batch_start("tests.rw.csv_to_csv", params))
    assert failed.status == ExecutionStatus.FAILED
    FAIL_AT["value"] = None
    restarted = run_in_process(operator.execution_restart(execution_id=failed.pk))

    # then every good record once, the bad lines skipped with their line numbers
    assert restarted.status == ExecutionStatus.COMPLETED, restarted.error
    assert target.read_text() == "id,name\n" + "".join(f"{n},name {n}\n" for n in good)
    first, second = step_execution(failed, "copy"), step_execution(restarted, "copy")
    assert (first.read_skip_count, first.commit_count) == (2, 2)
    assert second.read_skip_count == 1
    assert [entry["line"] for entry in second.execution_context["bad_lines"]] == [5, 9]
    assert second.execution_context["bad_lines"][0]["reason"] == "expected 2 fields, found 3"


# --- HTTP writer --------------------------------------------------------------------------------


def _numbers_as_dicts(number):
    return {"n": number}


@batch_job("tests.rw.http_post")
def http_post_job():
    return JobBuilder().start(chunk_step(
        "post", reader=lambda ctx: NumbersReader(ctx.params["count"]),
        processor=_numbers_as_dicts, chunk_size=3,
        writer=lambda ctx: HttpWriter(ctx.params["url"], step=ctx, headers={"X-Token": "t"}),
        retry=RetryPolicy((HttpWriteError,), attempts=2),
    )).build()  # fmt: skip


def _posted(httpserver) -> list[tuple[str, list]]:
    return [
        (request.headers["Idempotency-Key"], json.loads(request.data))
        for request, response in httpserver.log
    ]


@pytest.mark.django_db
def test_http_writer_posts_each_chunk_with_its_idempotency_key(httpserver):
    httpserver.expect_request("/sink", method="POST", headers={"X-Token": "t"}).respond_with_data(
        "", status=204
    )
    execution = run_in_process(batch_start("tests.rw.http_post",
                                   {"count": 7, "url": httpserver.url_for("/sink")}))  # fmt: skip

    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    assert _posted(httpserver) == [
        (f"{execution.pk}:post:1", [{"n": 1}, {"n": 2}, {"n": 3}]),
        (f"{execution.pk}:post:2", [{"n": 4}, {"n": 5}, {"n": 6}]),
        (f"{execution.pk}:post:3", [{"n": 7}]),
    ]
    assert httpserver.log[0][0].headers["Content-Type"] == "application/json"


@pytest.mark.django_db
def test_http_writer_retried_and_restarted_chunks_keep_their_key(httpserver):
    # given a service that fails chunk 2 twice: it is retried once, then the step fails
    answers = iter([204, 503, 503, 204, 204])
    httpserver.expect_request("/sink").respond_with_handler(
        lambda request: Response("", status=next(answers))
    )
    url = httpserver.url_for("/sink")
    failed = run_in_process(batch_start("tests.rw.http_post", {"count": 8, "url": url}))
    assert failed.status == ExecutionStatus.FAILED

    # when the execution is restarted (an execution with an id of its own)
    restarted = run_in_process(operator.execution_restart(execution_id=failed.pk))

    # then chunk 2 went three times under one key, the one the instance's first execution gave
    assert restarted.status == ExecutionStatus.COMPLETED, restarted.error
    assert restarted.pk != failed.pk
    assert _posted(httpserver) == [
        (f"{failed.pk}:post:1", [{"n": 1}, {"n": 2}, {"n": 3}]),
        (f"{failed.pk}:post:2", [{"n": 4}, {"n": 5}, {"n": 6}]),
        (f"{failed.pk}:post:2", [{"n": 4}, {"n": 5}, {"n": 6}]),
        (f"{failed.pk}:post:2", [{"n": 4}, {"n": 5}, {"n": 6}]),
        (f"{failed.pk}:post:3", [{"n": 7}, {"n": 8}]),
    ]
