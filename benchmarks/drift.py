"""Benchmark: the drift job's time and peak memory, bounded by day-stratified sampling.

Windows of the handbook file's features (plus a score column): 100,000 current rows against a
300,000-row reference, and 1,000,000 current rows. Ours (:func:`fraudops.drift.report.run_drift`
after :func:`fraudops.drift.report.sample_by_day` to ``monitor_max_rows``, default 20,000) next to a
plain Evidently ``Report.run`` on the full frames in the same run. Peak memory is the
tracemalloc peak of the call, in MiB.

Usage: python benchmarks/drift.py [--skip-full-million]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
import pandas as pd
from _common import emit, load_handbook

from fraudops.data import contract as c
from fraudops.drift.report import MONITORED, SCORE, run_drift, sample_by_day
from fraudops.offline.handbook import compute_features
from fraudops.settings import Settings


def measure(fn):
    tracemalloc.start()
    began = time.perf_counter()
    fn()
    seconds = time.perf_counter() - began
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return round(seconds, 2), round(peak / 2**20, 1)


def plain_evidently(reference: pd.DataFrame, current: pd.DataFrame) -> None:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    columns = list(MONITORED)
    definition = DataDefinition(numerical_columns=columns)
    Report([DataDriftPreset(columns=columns)]).run(
        current_data=Dataset.from_pandas(current[columns], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[columns], data_definition=definition),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-full-million", action="store_true")
    args = parser.parse_args()
    settings = Settings()
    transactions = load_handbook()
    features = compute_features(transactions).assign(
        **{
            SCORE: np.random.default_rng(0).random(len(transactions)),
            c.TX_DATETIME: transactions[c.TX_DATETIME],
        }
    )
    reference = features.iloc[200_000:500_000]
    cases = {"current_100k": features.iloc[-100_000:], "current_1m": features.iloc[-1_000_000:]}
    figures = {"reference_rows": len(reference), "max_rows": settings.monitor_max_rows}
    warm = features.iloc[:2_000]
    run_drift(warm, warm, threshold=0.5)  # imports and first-call set-up, for both
    plain_evidently(warm, warm)
    for name, current in cases.items():

        def ours(current=current):
            sampled = sample_by_day(current, c.TX_DATETIME, settings.monitor_max_rows)
            run_drift(reference, sampled, threshold=0.5)

        seconds, peak = measure(ours)
        figures[name] = {"rows": len(current), "ours_seconds": seconds, "ours_peak_mib": peak}
        if name == "current_1m" and args.skip_full_million:
            continue
        seconds, peak = measure(lambda current=current: plain_evidently(reference, current))
        figures[name].update(plain_evidently_seconds=seconds, plain_evidently_peak_mib=peak)
    emit("drift", figures)


if __name__ == "__main__":
    main()
