"""PII-safe prediction and label logs: Parquet files partitioned by day, written in background.

Rows are queued by the request path (never blocking it) and written by one thread in batches,
each batch as new files ``<root>/date=YYYY-MM-DD/part-<time>-<uuid>.parquet`` written to a
temporary name and renamed, so a reader never sees half a file. A full queue or a failing disk
never fails a request: rows are buffered up to ``max_buffered_rows`` and then counted as
dropped. :meth:`LogWriter.close` drains the queue: nothing is lost on a clean stop.

Customer and terminal ids are stored only as keyed hashes (HMAC-SHA256 with a secret key,
first 32 hex digits), so the log can be joined per card without holding card numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import queue
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)


def load_or_create_key(path: Path) -> bytes:
    """The hashing key stored at ``path`` (32 random bytes, created with mode 0600 if absent)."""
    if path.is_file():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


class IdHasher:
    """Keyed hash of an identifier: 32 hex digits of HMAC-SHA256(key, str(id))."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the hashing key must have at least 16 bytes")
        self._key = key

    def __call__(self, identifier: int | str) -> str:
        return hmac.new(self._key, str(identifier).encode(), hashlib.sha256).hexdigest()[:32]


class LogWriter:
    """Background, batching, day-partitioned Parquet writer.

    Args:
        root: folder of the log.
        time_column: the column (datetime) whose day partitions the rows.
        batch_rows: rows per write at most.
        flush_seconds: longest a row waits before it is written.
        max_buffered_rows: rows held while writes fail or lag; more are counted as dropped.
    """

    def __init__(
        self,
        root: Path,
        time_column: str,
        *,
        batch_rows: int = 5_000,
        flush_seconds: float = 1.0,
        max_buffered_rows: int = 200_000,
    ) -> None:
        self.root = Path(root)
        self.time_column = time_column
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        self.max_buffered_rows = max_buffered_rows
        self.written_rows = 0
        self.dropped_rows = 0
        self.failed_writes = 0
        self.last_error: str | None = None
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._stop = threading.Event()
        self._pending: list[dict[str, Any]] = []
        self._thread = threading.Thread(
            target=self._run, name=f"log-writer-{self.root.name}", daemon=True
        )
        self._thread.start()

    def append(self, row: Mapping[str, Any]) -> bool:
        """Queue one row; returns False (and counts it dropped) when the buffer is full."""
        if self._queue.qsize() + len(self._pending) >= self.max_buffered_rows:
            self.dropped_rows += 1
            return False
        self._queue.put_nowait(dict(row))
        return True

    @property
    def buffered_rows(self) -> int:
        return self._queue.qsize() + len(self._pending)

    def _run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            deadline = time.monotonic() + self.flush_seconds
            while len(self._pending) < self.batch_rows or stopping:
                timeout = 0.0 if stopping else deadline - time.monotonic()
                try:
                    item = self._queue.get(timeout=max(0.0, timeout))
                except queue.Empty:
                    break
                if item is not None:
                    self._pending.append(item)
            if self._pending:
                self._write()
            if stopping:
                if self._pending:  # the last write failed: these rows cannot be written
                    self.dropped_rows += len(self._pending)
                    self._pending = []
                return

    def _write(self) -> None:
        rows, self._pending = self._pending, []
        try:
            frame = pd.DataFrame(rows)
            days = pd.to_datetime(frame[self.time_column]).dt.strftime("%Y-%m-%d")
            stamp = time.strftime("%Y%m%dT%H%M%S")
            for day, part in frame.groupby(days, sort=True):
                folder = self.root / f"date={day}"
                folder.mkdir(parents=True, exist_ok=True)
                name = f"part-{stamp}-{uuid.uuid4().hex[:12]}.parquet"
                tmp = folder / f".{name}.tmp"
                part.to_parquet(tmp, index=False)
                os.replace(tmp, folder / name)
            self.written_rows += len(rows)
            self.last_error = None
        except Exception as exc:  # a broken disk must not lose the rows or stop the writer
            self.failed_writes += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            logger.error("prediction log write to %s failed: %s", self.root, self.last_error)
            keep = max(0, self.max_buffered_rows - self._queue.qsize())
            self.dropped_rows += max(0, len(rows) - keep)
            self._pending = rows[:keep] + self._pending
            time.sleep(min(self.flush_seconds, 1.0))

    def close(self, timeout: float = 30.0) -> None:
        """Write every queued row, then stop the thread (idempotent)."""
        self._stop.set()
        self._queue.put(None)  # wakes a writer waiting for rows
        self._thread.join(timeout)


def read_log(root: Path) -> pd.DataFrame:
    """Every row of a log folder (empty frame if none), in file order."""
    files = sorted(Path(root).glob("date=*/part-*.parquet"))
    if not files:
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
