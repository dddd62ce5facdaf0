"""Benchmark: the online cost of one event at a hot entity vs at a quiet one.

A synthetic handbook-schema history: one hot terminal with ``--hot`` events (default 200,000)
inside its lagged 30-day window (``(t - 37 d, t - 7 d]``, the label delay being 7 days) plus a
week of later traffic, 2,000 quiet terminals with a few events each, 5,000 cards, 1 % fraud
labels. Both engines hold the same history, then observe the same stream of ``--events``
events after it, alternating a quiet terminal and the hot one; each ``observe`` is timed.

- ours: :class:`fraudops.streaming.state.OnlineState` with the shipped handbook spec, the
  service's in-process state (the spec's engine behind the clock and id rules; history loaded
  with ``warm_up``), each event one ``observe_many`` as a ``/score`` request does;
- the peer in the same run: today's :class:`fraudops.streaming.handbook_state.OnlineFeatures` with a
  :class:`~fraudops.streaming.handbook_state.MemoryStore` (fed through ``warm_up``);
- with ``--redis URL`` (skipped with ``--redis ''``), the same pair in Redis: ours
  :class:`fraudops.streaming.redis_state.RedisOnlineState` (tiles), the peer the handbook's
  :class:`~fraudops.streaming.handbook_state.RedisStore` (sorted sets read whole per window);
  each under its own key prefix, deleted afterwards.

Prints JSON: median and p99 ms per ``observe`` at a quiet and at the hot terminal for each
engine, the hot/quiet ratio of the medians, and how many observed rows had different features
in the two engines (expected 0: both equal the offline features). Target: ours at the hot
terminal within 2x of a quiet terminal's.

Usage: python benchmarks/hot_entity.py [--hot 200000] [--events 1000] [--redis URL]
"""

from __future__ import annotations

import argparse
import time
import uuid

import numpy as np
import pandas as pd
from _common import emit

from fraudops.data import contract as c
from fraudops.spec import load_spec
from fraudops.streaming.handbook_state import MemoryStore, OnlineFeatures, RedisStore, Transaction
from fraudops.streaming.redis_state import RedisOnlineState
from fraudops.streaming.state import OnlineState

DAY = 86_400
NOW = pd.Timestamp("2024-06-01")
HOT = 0


def history(n_hot: int, rng: np.random.Generator) -> pd.DataFrame:
    """The hot terminal's window and week, quiet terminals, in time order, labelled."""
    n_recent, n_quiet = n_hot // 5, 20_000
    offsets = np.concatenate(
        [
            rng.integers(7 * DAY, 37 * DAY, n_hot),  # inside the hot terminal's lagged window
            rng.integers(1, 7 * DAY, n_recent),  # its last week: not yet in the window
            rng.integers(1, 37 * DAY, n_quiet),
        ]
    )
    terminals = np.concatenate(
        [np.full(n_hot + n_recent, HOT), rng.integers(1, 2_001, n_quiet)]
    ).astype(np.int64)
    n = len(offsets)
    frame = pd.DataFrame(
        {
            c.TRANSACTION_ID: np.arange(n, dtype=np.int64),
            c.TX_DATETIME: NOW - pd.to_timedelta(offsets, unit="s"),
            c.CUSTOMER_ID: rng.integers(0, 5_000, n),
            c.TERMINAL_ID: terminals,
            c.TX_AMOUNT: np.round(rng.gamma(2.0, 30.0, n), 2),
            c.LABEL: (rng.random(n) < 0.01).astype(np.int8),
        }
    )
    return frame.sort_values([c.TX_DATETIME, c.TRANSACTION_ID]).reset_index(drop=True)


def stream(n_events: int, first_id: int, rng: np.random.Generator) -> list[Transaction]:
    """Events after the history, alternating a quiet terminal and the hot one."""
    return [
        Transaction(
            transaction_id=first_id + i,
            tx_datetime=(NOW + pd.Timedelta(seconds=i)).to_pydatetime(),
            customer_id=int(rng.integers(0, 5_000)),
            terminal_id=HOT if i % 2 else int(rng.integers(1, 2_001)),
            tx_amount=float(np.round(rng.gamma(2.0, 30.0), 2)),
        )
        for i in range(n_events)
    ]


def timed(observe, events) -> tuple[list[float], list[dict]]:
    seconds, rows = [], []
    for event in events:
        began = time.perf_counter()
        rows.append(observe(event))
        seconds.append(time.perf_counter() - began)
    return seconds, rows


def figures(seconds: list[float]) -> dict[str, float]:
    quiet, hot = np.array(seconds[0::2]) * 1e3, np.array(seconds[1::2]) * 1e3
    return {
        "quiet_median_ms": round(float(np.median(quiet)), 4),
        "quiet_p99_ms": round(float(np.percentile(quiet, 99)), 4),
        "hot_median_ms": round(float(np.median(hot)), 4),
        "hot_p99_ms": round(float(np.percentile(hot, 99)), 4),
        "hot_over_quiet": round(float(np.median(hot) / np.median(quiet)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hot", type=int, default=200_000, help="hot terminal's window events")
    parser.add_argument("--events", type=int, default=1_000, help="observed events, timed")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="'' to skip Redis")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    past = history(args.hot, rng)
    events = stream(args.events, len(past), rng)

    spec = load_spec("handbook")
    ours = OnlineState(spec, skew=DAY)
    began = time.perf_counter()
    ours.warm_up(past)
    ours_load = time.perf_counter() - began

    peer = OnlineFeatures(MemoryStore(), label_delay_days=7)
    began = time.perf_counter()
    peer.warm_up(past)
    peer_load = time.perf_counter() - began

    def observe_ours(tx: Transaction) -> dict:
        return ours.observe_many([tx.as_event()])[0]

    ours_seconds, ours_rows = timed(observe_ours, events)
    peer_seconds, peer_rows = timed(peer.observe, events)
    in_window = int(
        ((past[c.TERMINAL_ID] == HOT) & (past[c.TX_DATETIME] <= NOW - pd.Timedelta(days=7))).sum()
    )
    out = {
        "history_rows": len(past),
        "hot_terminal_events_in_30d_window": in_window,
        "observed_events": args.events,
        "ours": {**figures(ours_seconds), "load_seconds": round(ours_load, 1)},
        "peer_online_features_memory_store": {
            **figures(peer_seconds),
            "load_seconds": round(peer_load, 1),
        },
        "rows_with_different_features": differing(ours_rows, peer_rows),
        "target": "ours hot_over_quiet <= 2",
    }
    if args.redis:
        out.update(in_redis(args.redis, spec, past, events, ours_rows))
    emit("hot_entity", out)


def differing(rows: list[dict], others: list[dict]) -> int:
    return sum(
        {k: a[k] for k in c.FEATURES} != {k: b[k] for k in c.FEATURES}
        for a, b in zip(rows, others, strict=True)
    )


def in_redis(url: str, spec, past: pd.DataFrame, events: list[Transaction], truth: list[dict]):
    """Ours and the handbook's Redis store, each under a fresh prefix (deleted afterwards)."""
    tag = uuid.uuid4().hex[:8]
    ours = RedisOnlineState(spec, url, DAY, prefix=f"bench-hot-{tag}")
    store = RedisStore(url, 7, prefix=f"bench-hot-peer-{tag}")
    peer = OnlineFeatures(store, label_delay_days=7)
    try:
        began = time.perf_counter()
        ours.warm_up(past)
        ours_load = time.perf_counter() - began
        began = time.perf_counter()
        peer.warm_up(past)
        peer_load = time.perf_counter() - began
        ours_seconds, ours_rows = timed(lambda tx: ours.observe_many([tx.as_event()])[0], events)
        peer_seconds, peer_rows = timed(peer.observe, events)
    finally:
        ours.clear()
        store.clear()
    return {
        "ours_redis": {**figures(ours_seconds), "load_seconds": round(ours_load, 1)},
        "peer_redis_store": {**figures(peer_seconds), "load_seconds": round(peer_load, 1)},
        "redis_rows_different_from_memory": {
            "ours": differing(ours_rows, truth),
            "peer": differing(peer_rows, truth),
        },
    }


if __name__ == "__main__":
    main()
