import datetime as dt
import time

import pytest

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
