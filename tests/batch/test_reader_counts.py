"""Flat-file readers count the items they have left (CountingReader): from a restart's
checkpoint, within a partition's range, with or without a last line end."""

from batchjobs.batch.protocols import CountingReader
from batchjobs.batch.readers import CsvReader, JsonLinesReader, file_ranges


def _write(path, text: str) -> str:
    path.write_bytes(text.encode())
    return str(path)


def _read_all(reader) -> int:
    count = 0
    while reader.read() is not None:
        count += 1
    return count


def test_a_csv_file_counts_its_records_after_the_header(tmp_path):
    path = _write(tmp_path / "a.csv", "a,b\n" + "".join(f"{n},x\n" for n in range(1234)))
    reader = CsvReader(path)
    assert isinstance(reader, CountingReader)
    reader.open({})
    assert reader.items_remaining() == 1234
    assert _read_all(reader) == 1234
    reader.close()


def test_a_last_line_without_its_line_end_counts(tmp_path):
    path = _write(tmp_path / "a.jsonl", '{"n": 1}\n{"n": 2}\n{"n": 3}')
    reader = JsonLinesReader(path)
    reader.open({})
    assert reader.items_remaining() == 3
    reader.close()


def test_a_restart_counts_from_its_checkpoint(tmp_path):
    path = _write(tmp_path / "a.csv", "a,b\n" + "".join(f"{n},x\n" for n in range(500)))
    first = CsvReader(path)
    first.open({})
    for _ in range(120):
        first.read()
    context: dict = {}
    first.update(context)
    first.close()
    # when the step restarts from the checkpoint
    again = CsvReader(path)
    again.open(context)
    # then
    assert again.items_remaining() == 380
    assert _read_all(again) == 380
    again.close()


def test_each_partition_counts_its_own_range(tmp_path):
    path = _write(tmp_path / "a.csv", "a,b\n" + "".join(f"{n},x\n" for n in range(1001)))
    counts = []
    for file_range in file_ranges(path, 3):
        reader = CsvReader(path, range=file_range)
        reader.open({})
        counts.append((reader.items_remaining(), _read_all(reader)))
        reader.close()
    assert [counted for counted, _ in counts] == [read for _, read in counts]
    assert sum(read for _, read in counts) == 1001


def test_an_empty_file_has_nothing_left(tmp_path):
    reader = CsvReader(_write(tmp_path / "a.csv", "a,b\n"))
    reader.open({})
    assert reader.items_remaining() == 0
    reader.close()
