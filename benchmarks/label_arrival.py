"""What analysts' early labels are worth to the model: the same training with and without the
features that count labels by their arrival.

Reads a demo warehouse written with the ``handbook-arrival`` spec and simulated analysts
(``FRAUDOPS_HOME=H fraudops demo --spec handbook-arrival``: ``H/demo/warehouse``), whose
``LABEL_KNOWN_AT`` says when each label reached the service. For each weekly holdout it trains
the default model twice on the same rows and labels: with the spec (the handbook's features plus
``TERMINAL_ID_KNOWN_RISK_{1,7}DAY_WINDOW``) and with the same spec minus those two (the
handbook's features; the same ``known_at``, so the same test rows once known-compromised cards
are dropped), and prints AP, Card Precision@100 and recall at 1 % FPR of both.

Usage: python benchmarks/label_arrival.py WAREHOUSE [--weeks 4]
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import emit

from fraudops.settings import Settings
from fraudops.spec import load_spec, spec_yaml
from fraudops.spec.data import prepare_events, read_events
from fraudops.spec.model import DatasetSpec
from fraudops.training import build_dataset, evaluate_holdout, fit_challenger


def without_known_risk(spec: DatasetSpec) -> DatasetSpec:
    """``spec`` without its ``label_arrival`` blocks (its ``known_at`` kept)."""
    blocks = [agg for agg in spec.aggregations if agg.lag != "label_arrival"]
    return spec.model_copy(update={"aggregations": blocks, "name": f"{spec.name}-without"})


def holdout_figures(events, spec_file: Path, test_end: dt.date) -> dict[str, float]:
    """Train the default model on the window before ``test_end`` and measure its holdout."""
    settings = Settings(dataset_spec=str(spec_file), test_end=test_end)
    dataset = build_dataset(events, settings)
    model = fit_challenger(dataset, settings)
    metrics = evaluate_holdout(model, dataset, settings).metrics.as_dict()
    keys = ("average_precision", "card_precision_at_k", "recall_at_fpr")
    return {k: round(float(metrics[k]), 4) for k in keys if k in metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("--weeks", type=int, default=4)
    args = parser.parse_args()
    arrival = load_spec("handbook-arrival")
    events = prepare_events(read_events(args.warehouse, arrival), arrival)
    last = events[arrival.event_time.column].max().date()
    analyst = events[arrival.label.known_at] < (
        events[arrival.event_time.column].dt.normalize() + np.timedelta64(7, "D")
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for spec in (arrival, without_known_risk(arrival)):
            files[spec.name] = Path(tmp) / f"{spec.name}.yaml"
            files[spec.name].write_text(spec_yaml(spec), encoding="utf-8")
        for week in range(args.weeks):
            test_end = last - dt.timedelta(days=7 * week)
            began = time.perf_counter()
            row = {"test_end": test_end.isoformat()}
            for name, file in files.items():
                row[name] = holdout_figures(events, file, test_end)
            row["seconds"] = round(time.perf_counter() - began, 1)
            rows.append(row)
    with_, without = arrival.name, f"{arrival.name}-without"
    gains = {
        key: round(float(np.mean([r[with_][key] - r[without][key] for r in rows])), 4)
        for key in rows[0][with_]
    }
    emit(
        "label_arrival",
        {
            "rows": len(events),
            "frauds_labelled_early_by_analysts": int(
                (analyst & (events[arrival.label.column] == 1)).sum()
            ),
            "weeks": rows,
            "mean_gain_with_known_risk": gains,
        },
    )


if __name__ == "__main__":
    main()
