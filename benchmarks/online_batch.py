"""Benchmark: the online state's cost of a 1,000-event request, as ``/score_batch`` pays it.

Two in-process states (:class:`fraudops.streaming.state.OnlineState`, the shipped handbook
spec) warmed with the same history (the shared handbook file up to ``2018-09-20``, 30 days and
the label delay, ~355,000 rows) then fed the same next events in 1,000-event requests:

- ours: each request one ``observe_many`` (each entity key's events under one lock, the float
  arithmetic of the whole request in numpy);
- the peer in the same run: the same state fed one event per call, as the service computed a
  batch before (every event its own admission, locks and arithmetic).

Both answer the same features (checked: rows that differ, expected 0). Also printed: the
state's warm-up time and memory (RSS growth), and the pause of one full (generation-2)
collection of CPython's cycle collector over the warmed state (its stop-the-world cost).

Prints JSON: median, mean and max ms per 1,000-event request per path, their ratio, the
slowest request (expiry and collector pauses fall on one request each).

Usage: python benchmarks/online_batch.py [--requests 40]
"""

from __future__ import annotations

import argparse
import gc
import time
from typing import Any

import numpy as np
import pandas as pd
import psutil
from _common import HANDBOOK_FILE, emit, load_handbook

from fraudops.data import contract as c
from fraudops.serving.scorer import history_for_warm_up
from fraudops.settings import Settings
from fraudops.streaming.state import OnlineState

HISTORY_END = "2018-09-20"
ROWS = 1_000


def timed_requests(state: OnlineState, requests: list[list[dict[str, Any]]], batch: bool) -> Any:
    """(ms per request, features) of feeding ``requests`` to ``state``."""
    took, features = [], []
    for request in requests:
        began = time.perf_counter()
        if batch:
            got = state.observe_many(request)
        else:
            got = [row for event in request for row in state.observe_many([event])]
        took.append((time.perf_counter() - began) * 1000)
        features += got
    return np.array(took), features


def summary(ms: np.ndarray) -> dict[str, float]:
    return {
        "median_ms": round(float(np.median(ms)), 1),
        "mean_ms": round(float(ms.mean()), 1),
        "max_ms": round(float(ms.max()), 1),
        "rows_per_s": round(ROWS * len(ms) / (ms.sum() / 1000)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    settings = Settings(data_path=HANDBOOK_FILE, online_history_end=HISTORY_END)
    history = history_for_warm_up(settings)
    transactions = load_handbook()
    after = transactions[
        transactions[c.TX_DATETIME] >= pd.Timestamp(HISTORY_END) + pd.Timedelta(days=1)
    ]
    columns = settings.spec.raw_columns()
    events = after[columns].head(ROWS * args.requests).to_dict("records")
    for event in events:
        event[c.TX_DATETIME] = event[c.TX_DATETIME].to_pydatetime()
    requests = [events[i : i + ROWS] for i in range(0, len(events), ROWS)]

    process = psutil.Process()
    gc.collect()
    rss = process.memory_info().rss
    began = time.perf_counter()
    ours = OnlineState(settings.spec, settings.max_event_skew_seconds)
    ours.warm_up(history)
    warm_s = time.perf_counter() - began
    gc.collect()
    state_mib = (process.memory_info().rss - rss) / 2**20
    began = time.perf_counter()
    gc.collect()
    pause_ms = (time.perf_counter() - began) * 1000
    peer = OnlineState(settings.spec, settings.max_event_skew_seconds)
    peer.warm_up(history)

    batch_ms, batch_rows = timed_requests(ours, requests, batch=True)
    single_ms, single_rows = timed_requests(peer, requests, batch=False)
    differ = sum(a != b for a, b in zip(batch_rows, single_rows, strict=True))
    emit(
        "online_batch",
        {
            "history_rows": len(history),
            "warm_up_s": round(warm_s, 1),
            "state_mib": round(state_mib),
            "full_collection_pause_ms": round(pause_ms),
            "requests": len(requests),
            "ours_observe_many": summary(batch_ms),
            "peer_one_event_per_call": summary(single_ms),
            "median_ratio": round(float(np.median(single_ms) / np.median(batch_ms)), 2),
            "rows_with_different_features": differ,
        },
    )


if __name__ == "__main__":
    main()
