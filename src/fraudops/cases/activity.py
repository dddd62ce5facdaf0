"""An entity's recent activity from the prediction log, for the case view (no clear ids:
the log holds only keyed hashes of PII entities, and the case holds the same hash)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from fraudops.logs.records import LOG_ID, LOG_SCORE, LOG_TIME


def recent_activity(
    log_dir: Path,
    column: str,
    value: Any,
    until: dt.datetime,
    *,
    days: int = 7,
    limit: int = 25,
    extra: tuple[str, ...] = (),
) -> pd.DataFrame:
    """The prediction log's rows of one entity in the ``days`` days up to ``until``.

    Args:
        log_dir: the prediction log (``date=YYYY-MM-DD`` partitions by event day).
        column: the log's entity column (``<entity>_hash`` for a PII entity); value: its value.
        until: the newest event time included (naive UTC); days: how far back (>= 1).
        limit: rows at most, newest first; extra: more log columns to show when present.

    Returns:
        Rows × (``tx_datetime``, ``transaction_id``, ``score``, ``decision``,
        ``model_version``, ``extra``...), newest first; empty when the log has none.
    """
    wanted = [LOG_TIME, LOG_ID, LOG_SCORE, "decision", "model_version", *extra]
    parts = []
    for offset in range(days + 1):
        day = (until - dt.timedelta(days=offset)).date()
        for path in sorted((log_dir / f"date={day}").glob("part-*.parquet")):
            names = set(pq.read_schema(path).names)
            if column not in names:
                continue
            table = pq.read_table(
                path,
                columns=[c for c in wanted if c in names],
                filters=[(column, "==", value)],
            )
            if table.num_rows:
                parts.append(table.to_pandas())
    if not parts:
        return pd.DataFrame(columns=wanted)
    frame = pd.concat(parts, ignore_index=True)
    frame = frame[frame[LOG_TIME] <= until]
    return frame.sort_values(LOG_TIME, ascending=False, kind="stable").head(limit)
