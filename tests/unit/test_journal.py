"""The write-ahead journal: rows of a killed writer are recovered once, never twice."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from fraudops.logs.journal import JOURNAL_DIR, Journal, read_segment
from fraudops.logs.predlog import LogWriter, read_log

pytestmark = pytest.mark.unit

BASE = dt.datetime(2018, 6, 1)


def rows(start: int, n: int) -> list[dict]:
    return [
        {"transaction_id": i, "tx_datetime": BASE + dt.timedelta(hours=i % 50), "score": i / 7}
        for i in range(start, start + n)
    ]


def killed_writer(root, written: int, unwritten: int) -> None:
    """A process logs ``written`` rows (flushed), then ``unwritten`` more, and is SIGKILLed."""
    script = textwrap.dedent(
        f"""
        import datetime as dt, sys, time
        from fraudops.logs.predlog import LogWriter
        base = dt.datetime(2018, 6, 1)
        def rows(start, n):
            return [{{"transaction_id": i, "tx_datetime": base + dt.timedelta(hours=i % 50),
                      "score": i / 7}} for i in range(start, start + n)]
        w = LogWriter({str(root)!r}, "tx_datetime", flush_seconds=0.05)
        w.append_many(rows(0, {written}))
        while w.written_rows < {written}:
            time.sleep(0.01)
        w.flush_seconds = 3600
        time.sleep(0.2)  # the writer now waits an hour for its next batch
        w.append_many(rows({written}, {unwritten}))
        print("logged", flush=True)
        time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "logged"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)


def test_rows_of_a_sigkilled_writer_are_recovered_exactly_once(tmp_path):
    root = tmp_path / "log"
    killed_writer(root, written=300, unwritten=700)
    assert len(read_log(root)) == 300  # only the flushed rows reached Parquet
    successor = LogWriter(root, "tx_datetime", flush_seconds=0.05)
    successor.close()
    log = read_log(root)
    assert sorted(log["transaction_id"]) == list(range(1000))
    assert successor.recovered_rows == 700
    assert log["tx_datetime"].dtype.kind == "M"  # types survive the journal
    assert log.set_index("transaction_id")["score"].to_dict() == {
        r["transaction_id"]: r["score"] for r in rows(0, 1000)
    }
    assert not (root / JOURNAL_DIR).exists()


def test_a_live_writers_journal_is_not_recovered_by_another_writer(tmp_path):
    root = tmp_path / "log"
    first = LogWriter(root, "tx_datetime", flush_seconds=3600)
    first.append_many(rows(0, 50))
    second = LogWriter(root, "tx_datetime", flush_seconds=0.05)  # e.g. a second worker
    second.close()
    assert second.recovered_rows == 0 and read_log(root).empty
    first.close()
    assert sorted(read_log(root)["transaction_id"]) == list(range(50))


def test_a_torn_last_line_is_ignored_and_the_rest_recovered(tmp_path):
    root = tmp_path / "log"
    killed_writer(root, written=0, unwritten=20)
    [segment] = (root / JOURNAL_DIR).glob("*.jsonl")
    with segment.open("ab") as fh:
        fh.write(b'{"transaction_id": 99, "tx_dat')  # died in the middle of a write
    successor = LogWriter(root, "tx_datetime", flush_seconds=0.05)
    successor.close()
    assert sorted(read_log(root)["transaction_id"]) == list(range(20))


def test_without_a_writable_folder_rows_stay_in_memory_and_the_reason_is_kept(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("no folder can be made under a regular file")
    writer = LogWriter(blocker / "log", "tx_datetime", flush_seconds=0.01, max_buffered_rows=30)
    assert writer.journal_error and "NotADirectoryError" in writer.journal_error
    assert writer.append_many(rows(0, 50)) == 30  # bounded: the rest is counted as dropped
    writer.close(timeout=5)
    assert writer.dropped_rows == 50 and writer.written_rows == 0


def test_rows_that_failed_to_reach_parquet_at_a_clean_stop_are_recovered_later(tmp_path):
    root = tmp_path / "log"
    root.mkdir()
    blocked = root / "date=2018-06-01"
    blocked.write_text("a file where the day folder should be")
    writer = LogWriter(root, "tx_datetime", flush_seconds=0.05)
    writer.append_many(rows(0, 5))  # all on 2018-06-01 (hours 0..4)
    writer.close(timeout=5)
    assert writer.written_rows == 0 and writer.dropped_rows == 5
    assert len(list((root / JOURNAL_DIR).glob("*.jsonl"))) == 1  # kept for recovery
    blocked.unlink()
    successor = LogWriter(root, "tx_datetime", flush_seconds=0.05)
    successor.close()
    assert sorted(read_log(root)["transaction_id"]) == list(range(5))


def test_a_batch_that_fails_halfway_is_not_written_twice(tmp_path):
    root = tmp_path / "log"
    root.mkdir()
    blocked = root / "date=2018-06-02"
    blocked.write_text("blocks the second day of the batch")
    writer = LogWriter(root, "tx_datetime", flush_seconds=0.05)
    writer.append_many(rows(0, 40))  # hours 0..39: two days in one batch
    deadline = time.monotonic() + 10
    while writer.failed_writes == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    blocked.unlink()
    writer.close()
    assert sorted(read_log(root)["transaction_id"]) == list(range(40))


def test_rows_appended_after_close_are_counted_as_dropped(tmp_path):
    writer = LogWriter(tmp_path / "log", "tx_datetime", flush_seconds=0.05)
    writer.close()
    assert writer.append_many(rows(0, 3)) == 0
    assert writer.dropped_rows == 3 and read_log(tmp_path / "log").empty


def test_journal_lines_read_back_as_written_nans_huge_ints_and_numpy_scalars_included(tmp_path):
    import math

    import numpy as np

    written = [
        {"id": 1, "at": BASE, "score": np.float64(0.25), "n": np.int64(3), "alert": np.bool_(True)},
        {"id": 2, "at": BASE, "score": math.nan, "reasons": None},  # orjson writes NaN as null
        {"id": 2**70, "at": BASE, "score": 1e-05},  # beyond orjson's 64-bit integers
    ]
    segment = tmp_path / "segment.jsonl"
    segment.write_bytes(Journal.encode(written))
    back = read_segment(segment)
    assert back[0] == {"id": 1, "at": BASE, "score": 0.25, "n": 3, "alert": True}
    assert math.isnan(back[1]["score"]) and back[1]["reasons"] is None
    assert back[2] == {"id": 2**70, "at": BASE, "score": 1e-05}
    with pytest.raises(TypeError, match="cannot journal"):
        Journal.encode([{"id": 3, "value": object()}])
