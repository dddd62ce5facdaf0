"""Benchmark (a): feature computation time and peak memory on the full shared file.

Ours (vectorised, :func:`fraudops.offline.handbook.compute_features`) against the peer in the same
run: the handbook's own per-group implementation (:mod:`fraudops.offline.reference`, chapter 3.4),
on the same 1,754,155 rows. Peak memory is the tracemalloc peak of the call (numpy and pandas
allocations), in MiB. Target: ours at most 5 s.

Usage: python benchmarks/features.py [--skip-peer]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
from _common import emit, load_handbook

from fraudops.data import contract as c
from fraudops.offline.handbook import compute_features
from fraudops.offline.reference import handbook_features


def measure(fn, *args, **kwargs):
    tracemalloc.start()
    began = time.perf_counter()
    out = fn(*args, **kwargs)
    seconds = time.perf_counter() - began
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, round(seconds, 2), round(peak / 2**20, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-peer", action="store_true", help="skip the ~60+ s handbook code")
    args = parser.parse_args()
    transactions = load_handbook()
    compute_features(transactions.head(1000))  # warm imports and caches
    timings = []
    for _ in range(3):
        ours, seconds, peak = measure(compute_features, transactions, label_delay_days=7)
        timings.append(seconds)
    figures = {
        "rows": len(transactions),
        "ours_seconds_best_of_3": min(timings),
        "ours_seconds_all": timings,
        "ours_peak_mib": peak,
        "target_seconds": 5.0,
        "target_met": min(timings) <= 5.0,
    }
    if not args.skip_peer:
        peer, peer_seconds, peer_peak = measure(handbook_features, transactions, delay=7)
        diff = np.abs(ours[list(c.HANDBOOK_FEATURES)].to_numpy() - peer.to_numpy())
        figures.update(
            handbook_seconds=peer_seconds,
            handbook_peak_mib=peer_peak,
            speedup=round(peer_seconds / min(timings), 1),
            max_abs_difference=float(diff.max()),
            rows_differing_over_1e_9=int((diff > 1e-9).any(axis=1).sum()),
        )
    emit("features", figures)


if __name__ == "__main__":
    main()
