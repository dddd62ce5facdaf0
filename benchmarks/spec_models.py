"""Benchmark: do the cards spec's features pay off over the handbook's on card payments?

Data: :func:`fraudops.data.card_simulator.simulate_card_payments` (90 days, 5,000 cards, 2,000
merchants, seed 0 by default), validated by ``prepare_events`` with the shipped ``cards``
spec. Two feature sets on the same rows, both from ``compute_spec_features``:

- ``cards``: the shipped spec (43 inputs: amount, the categoricals mcc/channel/country, hour,
  night, weekend, the card's count/mean/max/ratio and distinct merchants, countries and devices
  over 1 h, 1 d, 7 d and 30 d, the merchant's count and label rate over 1/7/30 d lagged by the
  label delay, seconds since the card's and the device's previous payment);
- ``handbook``: the handbook's 15 features (chapter 3.4 of Le Borgne et al., *Fraud Detection
  Handbook*) translated to these columns: amount, weekend, night (00–06 h), the card's count
  and mean amount over 1/7/30 d, the merchant's count and label rate over 1/7/30 d lagged by
  the label delay; no categoricals, no distinct counts.

Split by time: a warm-up (30 days) only fills the windows, then a training window (28 days), a
gap of the label delay (7 days: every training label is known when testing starts), and a
test window (the remaining 25 days). Model: HistGradientBoosting from
``fraudops.model.pipeline.build_model`` with the spec's categorical columns, seed 0. Metrics on the
test window (``fraudops.model.evaluation``): average precision, ROC AUC, recall at 1 % FPR,
Precision@100 per day by card (cards detected on earlier days removed), and the recall of each
fraud pattern at the 1 % alert budget. The ceiling of Precision@100 (the labels as scores)
is printed too: few cards are compromised a day, so it is well below 1. Engine time is the
wall time of ``compute_spec_features`` on all rows.

Usage: python benchmarks/spec_models.py [--seed 0] [--cards 5000] [--days 90]
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import numpy as np
import pandas as pd
from _common import emit

from fraudops.data import contract as c
from fraudops.data.card_simulator import (
    PATTERN,
    PATTERNS,
    CardSimulationConfig,
    simulate_card_payments,
)
from fraudops.model.evaluation import card_precision_at_k, evaluate
from fraudops.model.pipeline import build_model, fraud_scores
from fraudops.offline.engine import compute_spec_features
from fraudops.spec import DatasetSpec, load_spec
from fraudops.spec.data import prepare_events

WARMUP_DAYS, TRAIN_DAYS = 30, 28


def handbook_equivalent(cards: DatasetSpec) -> DatasetSpec:
    """The handbook's 15 features on the cards spec's columns (same ids, time, label)."""
    delay = f"{cards.label.delay}s"
    return DatasetSpec.model_validate(
        {
            "name": "cards_handbook_features",
            "event_id": cards.event_id.model_dump(),
            "event_time": {"column": cards.event_time.column},
            "label": {"column": cards.label.column, "positive": [1], "delay": delay},
            "amount": "amount",
            "entities": [
                {"name": "card", "column": "card_token"},
                {"name": "merchant", "column": "merchant_id", "pii": False},
            ],
            "numeric": [{"column": "amount", "min": 0}],
            "calendar": [
                {"name": "weekend", "kind": "weekend"},
                {"name": "night", "kind": "night", "hours": [0, 6]},
            ],
            "aggregations": [
                {
                    "entity": "card",
                    "windows": ["1d", "7d", "30d"],
                    "features": [
                        {"name": "card_tx_{window}", "kind": "count"},
                        {"name": "card_mean_amount_{window}", "kind": "mean", "of": "amount"},
                    ],
                },
                {
                    "entity": "merchant",
                    "windows": ["1d", "7d", "30d"],
                    "lag": "label_delay",
                    "features": [
                        {"name": "merchant_tx_{window}", "kind": "count"},
                        {"name": "merchant_fraud_rate_{window}", "kind": "label_rate"},
                    ],
                },
            ],
            "evaluation": {"precision_at_k_entity": "card"},
        }
    )


def fit_and_score(
    spec: DatasetSpec,
    features: pd.DataFrame,
    events: pd.DataFrame,
    patterns: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
) -> dict:
    """Fit on ``train`` rows, evaluate on ``test`` rows; the figures of one feature set."""
    label = events[spec.label.column]
    model = build_model(
        "hist_gradient_boosting",
        seed=0,
        features=spec.feature_names(),
        categorical=spec.categorical_features(),
    )
    began = time.perf_counter()
    model.fit(features[train], label[train])
    fit_seconds = time.perf_counter() - began
    scores = fraud_scores(model, features[test])
    card = spec.entity(spec.evaluation.precision_at_k_entity or "card").column
    holdout = pd.DataFrame(  # evaluate() reads the handbook's column names
        {
            c.TX_DATETIME: events.loc[test, spec.event_time.column].to_numpy(),
            c.CUSTOMER_ID: events.loc[test, card].to_numpy(),
            c.LABEL: label[test].to_numpy(),
        }
    )
    metrics = evaluate(holdout, scores, k=100, fpr=0.01, alert_rate=0.01)
    alerts = scores >= metrics.threshold
    test_patterns = patterns[test]
    by_pattern = {
        name: round(float(alerts[test_patterns == code].mean()), 4)
        for code, name in PATTERNS.items()
        if (test_patterns == code).any()
    }
    return {
        "n_features": len(spec.feature_names()),
        "categorical": spec.categorical_features(),
        "fit_seconds": round(fit_seconds, 1),
        "average_precision": round(metrics.average_precision, 4),
        "roc_auc": round(metrics.roc_auc, 4),
        "recall_at_1pct_fpr": round(metrics.recall_at_fpr, 4),
        "card_precision_at_100": round(metrics.card_precision_at_k, 4),
        "recall_by_pattern_at_1pct_alerts": by_pattern,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cards", type=int, default=5_000)
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()

    config = CardSimulationConfig(seed=args.seed, n_cards=args.cards, days=args.days)
    began = time.perf_counter()
    raw = simulate_card_payments(config)
    simulate_seconds = time.perf_counter() - began
    cards = load_spec("cards")
    handbook = handbook_equivalent(cards)
    # prepare_events sorts by time then id, as the simulator does: the rows stay aligned
    events = prepare_events(raw, cards)
    patterns = raw.set_index("tx_id").loc[events["tx_id"], PATTERN].to_numpy()

    engine_seconds, features = {}, {}
    for spec in (cards, handbook):
        began = time.perf_counter()
        features[spec.name] = compute_spec_features(events, spec)
        engine_seconds[spec.name] = round(time.perf_counter() - began, 2)

    start = pd.Timestamp(config.start)
    train_start = start + pd.Timedelta(days=WARMUP_DAYS)
    train_end = train_start + pd.Timedelta(days=TRAIN_DAYS)
    test_start = train_end + pd.Timedelta(seconds=cards.label.delay)
    times = events[cards.event_time.column]
    train = ((times >= train_start) & (times < train_end)).to_numpy()
    test = (times >= test_start).to_numpy()
    label = events[cards.label.column].to_numpy()

    results = {
        spec.name: fit_and_score(spec, features[spec.name], events, patterns, train, test)
        for spec in (cards, handbook)
    }
    holdout = pd.DataFrame(
        {
            c.TX_DATETIME: times[test].to_numpy(),
            c.CUSTOMER_ID: events.loc[test, "card_token"].to_numpy(),
            c.LABEL: label[test],
        }
    )
    oracle = card_precision_at_k(holdout, label[test].astype(np.float64), 100)
    emit(
        "spec_models",
        {
            "config": {
                "seed": config.seed,
                "days": config.days,
                "n_cards": config.n_cards,
                "n_merchants": config.n_merchants,
            },
            "rows": len(events),
            "fraud_share": round(float(label.mean()), 4),
            "simulate_seconds": round(simulate_seconds, 2),
            "engine_seconds": engine_seconds,
            "split": {
                "train": [str(train_start.date()), str((train_end - dt.timedelta(days=1)).date())],
                "test": [str(test_start.date()), str(times.max().date())],
                "train_rows": int(train.sum()),
                "train_frauds": int(label[train].sum()),
                "test_rows": int(test.sum()),
                "test_frauds": int(label[test].sum()),
            },
            "models": results,
            "card_precision_at_100_ceiling": round(oracle, 4),
            "cards_beats_handbook": all(
                results["cards"][k] > results["cards_handbook_features"][k]
                for k in (
                    "average_precision",
                    "roc_auc",
                    "recall_at_1pct_fpr",
                    "card_precision_at_100",
                )
            ),
        },
    )


if __name__ == "__main__":
    main()
