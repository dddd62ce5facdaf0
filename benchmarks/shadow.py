"""Benchmark: what a challenger in shadow (or canary) costs the service's scoring path.

Trains two versions on the shared handbook file (history before 2018-07-15; the champion, then
a second one staged as ``@challenger``), then scores the next real transactions one per call
through :class:`fraudops.serving.scorer.Scorer` (features from the online state, log writes
included, no HTTP), each mode in a fresh state on the same transactions, with one OpenMP thread
as in a service worker (``threadpool_limits(1)``, :mod:`services.service`):
- ``off``: no challenger (the peer: today's service);
- ``shadow``: the challenger scores every event on the background thread; the time counts
  until its queue is drained (nothing dropped), so the throughput includes its work;
- ``canary_10``: 10 % of the cards answered by the challenger, the rest shadowed.

Prints JSON: transactions/s over the whole run (drain included), p50/p99 latency of the
champion's answer, shadow rows dropped and the throughput ratio to ``off``. Target (issue 13):
shadow costs at most 30 % of single-transaction throughput.

Usage: python benchmarks/shadow.py [--rows 3000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import emit, load_handbook
from threadpoolctl import threadpool_limits

from fraudops import registry
from fraudops.data import contract as c
from fraudops.registry import stage as stages
from fraudops.serving.scorer import Scorer
from fraudops.settings import Settings
from fraudops.streaming.handbook_state import Transaction
from pipelines.training import run_training

TRAIN_START = "2018-05-01"
FIRST = pd.Timestamp("2018-07-15")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=3000, help="Transactions scored per mode.")
    args = parser.parse_args()
    threadpool_limits(1)  # as the service's worker: OpenMP threads would contend for the cores
    handbook = load_handbook()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        history = root / "history.parquet"
        handbook[handbook[c.TX_DATETIME] < FIRST].to_parquet(history)
        base = Settings(home=root / "home", data_path=history, train_start=TRAIN_START)
        run_training(base)
        run_training(base.model_copy(update={"seed": 1, "promotion": "staged"}))
        client = registry.client_for(base)
        later = handbook[handbook[c.TX_DATETIME] >= FIRST].head(args.rows)
        events = [
            Transaction(
                r.TRANSACTION_ID, r.TX_DATETIME, r.CUSTOMER_ID, r.TERMINAL_ID, r.TX_AMOUNT
            ).as_event()
            for r in later.itertuples(index=False)
        ]
        figures: dict[str, object] = {"transactions": len(events)}
        for mode in ("off", "shadow", "canary_10", "off_again"):
            if mode.startswith("off"):
                client.delete_registered_model_alias(base.model_name, registry.CHALLENGER)
            else:
                stage = stages.CANARY if mode.startswith("canary") else stages.SHADOW
                stages.enter(client, base.model_name, "2", stage, reason="bench", share=0.1)
            settings = Settings(
                home=root / mode, data_path=history, tracking_uri=base.resolved_tracking_uri
            )
            scorer = Scorer.start(settings, poll=False)
            assert (scorer.challenger is None) == mode.startswith("off"), mode
            times = []
            began = time.perf_counter()
            for event in events:
                started = time.perf_counter()
                scorer.score([event])
                times.append(time.perf_counter() - started)
            if scorer.shadow is not None:
                assert scorer.shadow.drain(timeout=600), mode
            elapsed = time.perf_counter() - began
            ms = np.array(times) * 1000
            figures[mode] = {
                "per_s": round(len(events) / elapsed),
                "p50_ms": round(float(np.percentile(ms, 50)), 3),
                "p99_ms": round(float(np.percentile(ms, 99)), 3),
                "challenger_scored": scorer.challenger_counters.scored,
                "challenger_decided": scorer.challenger_counters.decided,
                "shadow_dropped": scorer.challenger_counters.dropped,
            }
            scorer.close()
    off = (figures["off"]["per_s"] + figures["off_again"]["per_s"]) / 2  # type: ignore[index]
    for mode in ("shadow", "canary_10"):
        figures[f"{mode}_throughput_ratio"] = round(figures[mode]["per_s"] / off, 3)  # type: ignore[index]
    emit("shadow", figures)


if __name__ == "__main__":
    main()
