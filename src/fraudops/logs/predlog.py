"""PII-safe prediction and label logs: Parquet files partitioned by day, written in background.

The request path appends its rows to a write-ahead journal (:mod:`fraudops.logs.journal`, one
``os.write``, no fsync) and queues them; one thread writes them in batches, one new file per day
(and journal segment) per batch,
``<root>/date=YYYY-MM-DD/part-<time>-<segment>-<first>-<last>.parquet`` (the journal rows they
hold, listed exactly in the file's footer), each written to a temporary name and renamed, so a
reader never sees half a file. A full queue or a failing disk never fails a request: rows are
buffered up to ``max_buffered_rows`` and then counted as dropped. :meth:`LogWriter.close` drains
the queue: nothing is lost on a clean stop; the rows of a killed process are recovered from the
journal by the next writer.

Customer and terminal ids are stored only as keyed hashes (HMAC-SHA256 with a secret key,
first 32 hex digits), so the log can be joined per card without holding card numbers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fraudops.logs.journal import (
    ROWS_METADATA,
    Journal,
    Segment,
    covered_rows,
    orphans,
    part_name,
    read_segment,
    row_ranges,
)

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


#: Identifiers whose hashes an :class:`IdHasher` keeps (least recently used dropped first).
HASHES_KEPT = 65_536


class IdHasher:
    """Keyed hash of an identifier: 32 hex digits of HMAC-SHA256(key, str(id)).

    The last :data:`HASHES_KEPT` identifiers' hashes are kept (``functools.lru_cache``, typed:
    ``1`` and ``True`` stay apart): cards and merchants recur, and an HMAC costs ~2.6 µs.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the hashing key must have at least 16 bytes")
        self._key = key
        self._kept = functools.lru_cache(maxsize=HASHES_KEPT, typed=True)(self._digest)

    def _digest(self, identifier: int | str) -> str:
        return hmac.new(self._key, str(identifier).encode(), hashlib.sha256).hexdigest()[:32]

    def __call__(self, identifier: int | str) -> str:
        return self._kept(identifier)


class LogWriter:
    """Background, batching, day-partitioned Parquet writer with a write-ahead journal.

    Args:
        root: folder of the log.
        time_column: the column (datetime) whose day partitions the rows.
        batch_rows: rows per write at most.
        flush_seconds: longest a row waits before it is written.
        max_buffered_rows: rows held while writes fail or lag; more are counted as dropped.
        journal: append every row to :mod:`fraudops.logs.journal` before queueing it, so rows of a
            killed process are recovered by the next writer on ``root``. Where the journal
            cannot be written (e.g. the folder cannot be made), rows are kept in memory only
            and ``journal_error`` says why.
    """

    def __init__(
        self,
        root: Path,
        time_column: str,
        *,
        batch_rows: int = 5_000,
        flush_seconds: float = 1.0,
        max_buffered_rows: int = 200_000,
        journal: bool = True,
    ) -> None:
        self.root = Path(root)
        self.time_column = time_column
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        self.max_buffered_rows = max_buffered_rows
        self.written_rows = 0
        self.dropped_rows = 0
        self.recovered_rows = 0
        self.failed_writes = 0
        self.last_error: str | None = None
        self.journal_error: str | None = None
        self._journal: Journal | None = None
        if journal:
            try:
                self._journal = Journal(self.root)
            except OSError as exc:
                self.journal_error = f"{type(exc).__name__}: {exc}"
                logger.error("no write-ahead journal for %s: %s", self.root, self.journal_error)
        self._closed = False
        self._lock = threading.Lock()
        # a deque, not a queue.Queue: its appends and pops are thread-safe without a lock, and
        # a Queue's put (lock and condition per row) was ~6 % of a 1,000-row /score_batch
        self._queue: deque[_Item | None] = deque()
        self._stop = threading.Event()
        self._wake = threading.Event()  # ends the writer's sleep early: a full batch, close
        self._pending: list[_Item] = []
        self._segments: dict[str, Segment] = {}
        self._settled: dict[str, int] = {}  # rows of a segment written to Parquet
        self._thread = threading.Thread(
            target=self._run, name=f"log-writer-{self.root.name}", daemon=True
        )
        self._thread.start()

    def append(self, row: Mapping[str, Any]) -> bool:
        """Queue one row; returns False (and counts it dropped) when the buffer is full."""
        return self.append_many([row]) == 1

    def append_many(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Journal and queue rows in order; returns how many were accepted (the rest dropped).

        After :meth:`close`, every row is counted as dropped.
        """
        room = self.max_buffered_rows - len(self._queue) - len(self._pending)
        accepted = list(rows[: max(0, room)])
        data = None
        if self._journal is not None and accepted:
            try:
                data = Journal.encode(accepted)
            except TypeError as exc:
                self.journal_error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            if self._closed:
                accepted = []
            self.dropped_rows += len(rows) - len(accepted)
            if not accepted:
                return 0
            segment, first = None, 0
            if self._journal is not None and data is not None:
                try:
                    segment, first = self._journal.write(data, len(accepted))
                    self._segments.setdefault(segment.id, segment)
                except OSError as exc:  # e.g. disk full: keep serving, rows stay in memory
                    self.journal_error = f"{type(exc).__name__}: {exc}"
            self._queue.extend((segment, first + n, dict(row)) for n, row in enumerate(accepted))
        if len(self._queue) >= self.batch_rows:
            self._wake.set()  # a full batch is written now, not at the next flush
        return len(accepted)

    @property
    def buffered_rows(self) -> int:
        return len(self._queue) + len(self._pending)

    def _run(self) -> None:
        self._recover()
        while True:
            stopping = self._stop.is_set()
            if not stopping and len(self._queue) < self.batch_rows:
                # a sleep, not a blocking get: a waiting get would be woken (and take the
                # GIL) by every request's rows, a cost paid inside the request
                self._wake.wait(self.flush_seconds)
                self._wake.clear()
                stopping = self._stop.is_set()
            while len(self._pending) < self.batch_rows or stopping:
                try:
                    item = self._queue.popleft()
                except IndexError:
                    break
                if item is None:  # close() was called: write now, then stop
                    break
                self._pending.append(item)
            if self._pending:
                self._write()
            if stopping:
                if self._pending:  # the last write failed: left in the journal, if any
                    self.dropped_rows += len(self._pending)
                    self._pending = []
                self._release_segments(final=True)
                return

    def _write(self) -> None:
        items, self._pending = self._pending, []
        written, rest, error = self._write_parquet(items)
        self.written_rows += len(written)
        self._settle(written)
        if error is None:
            self.last_error = None
        else:  # a broken disk must not lose the rows or stop the writer
            self.failed_writes += 1
            self.last_error = f"{type(error).__name__}: {error}"
            logger.error("log write to %s failed: %s", self.root, self.last_error)
            keep = max(0, self.max_buffered_rows - len(self._queue))
            self.dropped_rows += max(0, len(rest) - keep)  # still in the journal, if any
            self._pending = rest[:keep] + self._pending
        try:
            self._release_segments(final=False)
        except OSError as exc:
            logger.error("journal clean-up in %s failed: %s", self.root, exc)
        if error is not None:
            time.sleep(min(self.flush_seconds, 1.0))

    def _write_parquet(
        self, items: Sequence[_Item]
    ) -> tuple[list[_Item], list[_Item], Exception | None]:
        """One file per (day, journal segment) of ``items``, rows in their order; each file
        records its journal rows in its footer (:data:`~fraudops.logs.journal.ROWS_METADATA`).

        Returns:
            The items now in Parquet, the items not written (in order), and the error that
            stopped the writes (None when all were written).
        """
        try:
            frame = pd.DataFrame([row for _, _, row in items])
            days = pd.to_datetime(frame[self.time_column]).dt.strftime("%Y-%m-%d").tolist()
        except Exception as exc:
            return [], list(items), exc
        groups: dict[tuple[str, str | None], list[int]] = {}
        for i, (segment, _, _) in enumerate(items):
            groups.setdefault((days[i], None if segment is None else segment.id), []).append(i)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        done: set[int] = set()
        for (day, segment_id), positions in groups.items():
            folder = self.root / f"date={day}"
            table = pa.Table.from_pandas(frame.iloc[positions], preserve_index=False)
            if segment_id is None:
                name = f"part-{stamp}-{uuid.uuid4().hex[:12]}.parquet"
            else:
                rows = [items[i][1] for i in positions]
                name = part_name(stamp, segment_id, min(rows), max(rows))
                metadata = {
                    **(table.schema.metadata or {}),
                    ROWS_METADATA: row_ranges(sorted(rows)),
                }
                table = table.replace_schema_metadata(metadata)
            tmp = folder / f".{name}.tmp"
            try:
                folder.mkdir(parents=True, exist_ok=True)
                pq.write_table(table, tmp)
                os.replace(tmp, folder / name)
            except Exception as exc:
                with contextlib.suppress(OSError):
                    tmp.unlink(missing_ok=True)
                written = [item for i, item in enumerate(items) if i in done]
                rest = [item for i, item in enumerate(items) if i not in done]
                return written, rest, exc
            done.update(positions)
        return list(items), [], None

    def _settle(self, items: Sequence[_Item]) -> None:
        """Count rows now in Parquet against their journal segments."""
        for segment, _, _ in items:
            if segment is not None:
                self._settled[segment.id] = self._settled.get(segment.id, 0) + 1

    def _release_segments(self, *, final: bool) -> None:
        """Delete segments whose rows are all in Parquet; at close, release the rest (kept)."""
        if self._journal is None:
            return
        with self._lock:
            current = self._journal.current
            candidates = dict(self._segments)
            if final:
                candidates[current.id] = current
            for segment_id, segment in candidates.items():
                if segment is current and not final:
                    continue
                done = self._settled.get(segment_id, 0) >= segment.rows
                if done or final:  # at close an unsettled segment is kept for recovery
                    self._journal.close(segment, delete=done)
                    self._segments.pop(segment_id, None)
                    self._settled.pop(segment_id, None)
            if final:
                self._journal.remove_if_empty()

    def _recover(self) -> None:
        """Write the rows of dead writers' journal segments that are not in Parquet yet."""
        if self._journal is None:
            return
        for fd, path in orphans(self.root):
            try:
                segment = Segment(path.stem, path, fd)
                covered = covered_rows(self.root, segment.id)
                rows = read_segment(path)
                missing = [
                    (segment, n, row) for n, row in enumerate(rows, start=1) if n not in covered
                ]
                _, _, error = self._write_parquet(missing)
                if error is not None:
                    raise error
                path.unlink(missing_ok=True)
                self.recovered_rows += len(missing)
                if missing:
                    logger.warning("recovered %d journaled rows into %s", len(missing), self.root)
            except Exception as exc:  # keep the segment for the next start
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.error("journal recovery of %s failed: %s", path, self.last_error)
            finally:
                os.close(fd)

    def close(self, timeout: float = 30.0) -> None:
        """Write every queued row, then stop the thread (idempotent); later rows are dropped."""
        with self._lock:
            self._closed = True
        self._stop.set()
        self._queue.append(None)  # ends the writer's draining of the queue
        self._wake.set()
        self._thread.join(timeout)


_Item = tuple[Segment | None, int, dict[str, Any]]


def log_days(root: Path) -> list[dt.date]:
    """The days of a log folder that have a ``date=YYYY-MM-DD`` partition, in order."""
    return sorted(
        dt.date.fromisoformat(p.name[5:]) for p in Path(root).glob("date=*") if p.is_dir()
    )


def log_files(root: Path, first: dt.date | None = None, last: dt.date | None = None) -> list[Path]:
    """The Parquet files of a log folder's days ``first``..``last`` (inclusive; None: open),
    by day, then by name (the order they were written in)."""
    return [
        f
        for day in log_days(root)
        if (first is None or day >= first) and (last is None or day <= last)
        for f in sorted((Path(root) / f"date={day}").glob("part-*.parquet"))
    ]


def read_log(
    root: Path,
    first: dt.date | None = None,
    last: dt.date | None = None,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The rows of a log folder's days ``first``..``last`` (:func:`log_files`; default: every
    day), ``columns`` only if given, in file order; an empty frame when there are none.

    Raises:
        KeyError, ValueError: (pyarrow) a file lacks one of ``columns``.
    """
    files = log_files(root, first, last)
    if not files:
        return pd.DataFrame()
    wanted = None if columns is None else list(columns)
    return pd.concat([pd.read_parquet(f, columns=wanted) for f in files], ignore_index=True)
