import datetime as dt
import time

import numpy as np
import pytest

from fraudops.logs.journal import covered_rows, row_ranges
from fraudops.logs.predlog import IdHasher, LogWriter, load_or_create_key, read_log

pytestmark = pytest.mark.unit


def rows(n: int, day: str = "2018-06-01"):
    base = dt.datetime.fromisoformat(day)
    return [
        {"transaction_id": i, "tx_datetime": base + dt.timedelta(hours=i % 30)} for i in range(n)
    ]


def test_writer_keeps_every_row_partitioned_by_day_after_close(tmp_path):
    writer = LogWriter(tmp_path / "log", "tx_datetime", batch_rows=7, flush_seconds=0.05)
    for row in rows(100):
        assert writer.append(row)
    writer.close()
    log = read_log(tmp_path / "log")
    assert sorted(log["transaction_id"]) == list(range(100))
    assert {p.name for p in (tmp_path / "log").iterdir()} == {"date=2018-06-01", "date=2018-06-02"}
    assert not list((tmp_path / "log").rglob(".*.tmp"))
    assert writer.written_rows == 100 and writer.dropped_rows == 0


def written_within(writer: LogWriter, rows_expected: int, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while writer.written_rows < rows_expected and time.monotonic() < deadline:
        time.sleep(0.01)
    return writer.written_rows >= rows_expected


def test_rows_reach_parquet_at_the_next_flush_while_the_writer_runs(tmp_path):
    writer = LogWriter(tmp_path / "log", "tx_datetime", batch_rows=1_000, flush_seconds=0.05)
    try:
        writer.append_many(rows(3))
        assert written_within(writer, 3)
        writer.append_many(rows(2))  # a second request after the writer went back to sleep
        assert written_within(writer, 5)
    finally:
        writer.close()


def test_a_full_batch_is_written_without_waiting_for_the_flush(tmp_path):
    writer = LogWriter(tmp_path / "log", "tx_datetime", batch_rows=10, flush_seconds=3600)
    try:
        time.sleep(0.3)  # the writer is asleep when the rows come
        writer.append_many(rows(4))
        writer.append_many(rows(6))
        assert written_within(writer, 10)
    finally:
        writer.close()


def test_a_flush_of_alternating_days_writes_one_file_per_day(tmp_path):
    root = tmp_path / "log"
    writer = LogWriter(root, "tx_datetime", batch_rows=1_000, flush_seconds=3600)
    days = [dt.datetime(2018, 6, 1, 12), dt.datetime(2018, 6, 2, 12)]
    alternating = [{"transaction_id": i, "tx_datetime": days[i % 2]} for i in range(1_000)]
    assert writer.append_many(alternating) == 1_000
    writer.close()
    files = sorted(root.glob("date=*/part-*.parquet"))
    assert [f.parent.name for f in files] == ["date=2018-06-01", "date=2018-06-02"]
    log = read_log(root)
    assert sorted(log["transaction_id"]) == list(range(1_000))
    first_day = log[log["tx_datetime"] == days[0]]["transaction_id"].tolist()
    assert first_day == list(range(0, 1_000, 2))  # request order kept within a day
    assert covered_rows(root, files[0].name.split("-")[2]) == set(range(1, 1_001))


def test_the_journal_rows_of_a_part_are_recorded_exactly_even_when_not_consecutive(tmp_path):
    assert row_ranges([1, 2, 3, 7, 9, 10]) == b"1-3,7-7,9-10"
    root = tmp_path / "log"
    writer = LogWriter(root, "tx_datetime", batch_rows=1_000, flush_seconds=3600)
    days = [dt.datetime(2018, 6, 1, 12), dt.datetime(2018, 6, 2, 12)]
    writer.append_many([{"transaction_id": i, "tx_datetime": days[i % 2]} for i in range(10)])
    writer.close()
    (first,) = root.glob("date=2018-06-01/part-*.parquet")
    segment = first.name.split("-")[2]
    first.unlink()  # the day-1 rows (journal rows 1, 3, 5, 7, 9) are not in Parquet any more
    assert covered_rows(root, segment) == {2, 4, 6, 8, 10}


def test_unwritable_folder_never_raises_and_counts_dropped_rows(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a regular file: no folder can be made under it")
    writer = LogWriter(
        blocker / "log", "tx_datetime", batch_rows=10, flush_seconds=0.01, max_buffered_rows=30
    )
    accepted = sum(writer.append(row) for row in rows(200))
    time.sleep(0.3)
    writer.close(timeout=5)
    assert writer.failed_writes >= 1 and writer.last_error
    assert writer.written_rows == 0
    assert accepted + (200 - accepted) == 200
    assert writer.dropped_rows == 200  # every row was either refused or could not be written


def test_id_hash_is_keyed_and_stable(tmp_path):
    key = load_or_create_key(tmp_path / "secrets" / "key")
    assert load_or_create_key(tmp_path / "secrets" / "key") == key
    assert (tmp_path / "secrets" / "key").stat().st_mode & 0o777 == 0o600
    hasher = IdHasher(key)
    assert hasher(1234) == hasher("1234") and len(hasher(1234)) == 32
    assert hasher(1234) != IdHasher(b"another key of 16+ bytes")(1234)
    assert "1234" not in hasher(1234)
    assert hasher(True) != hasher(np.int64(1)) == hasher(1)  # kept hashes: True is not 1
    assert hasher(1) == hasher(1) == IdHasher(key)(1)  # a kept hash is the hash


def test_a_log_is_read_by_day_range_and_columns(tmp_path):
    import pandas as pd

    for day, ids in (("2024-01-01", [1, 2]), ("2024-01-02", [3]), ("2024-01-03", [4, 5])):
        folder = tmp_path / f"date={day}"
        folder.mkdir()
        pd.DataFrame({"id": ids, "x": [0.5] * len(ids)}).to_parquet(folder / "part-a.parquet")
    assert read_log(tmp_path)["id"].tolist() == [1, 2, 3, 4, 5]
    middle = read_log(tmp_path, dt.date(2024, 1, 2), dt.date(2024, 1, 2), columns=["id"])
    assert middle.columns.tolist() == ["id"] and middle["id"].tolist() == [3]
    assert read_log(tmp_path, first=dt.date(2024, 1, 2))["id"].tolist() == [3, 4, 5]
    assert read_log(tmp_path, last=dt.date(2023, 12, 31)).empty
    assert read_log(tmp_path / "absent").empty


def test_decisions_are_appended_and_read_back_in_order(tmp_path):
    from fraudops.logs.jsonl import append_jsonl, read_jsonl

    path = tmp_path / "reports" / "decisions.jsonl"
    assert read_jsonl(path) == []
    append_jsonl(path, {"n": 1, "when": dt.date(2024, 1, 1)})
    append_jsonl(path, {"n": 2})
    assert read_jsonl(path) == [{"n": 1, "when": "2024-01-01"}, {"n": 2}]
