"""Benchmark (b): the handbook's chapter-5 test protocol with our default window and model.

Protocol (Le Borgne et al., *Fraud Detection Handbook*, chapter 5.3): 7-day label delay,
7-day test windows, 4 folds, the newest fold's (7-day) training period starting 2018-08-15 and
each older fold one week earlier; test sets exclude cards already known to be compromised;
Card Precision@100 removes cards detected on earlier days.

Our model trains on the default 28-day window that ends where the handbook's 7-day window
ends (so it starts 21 days earlier), and is tested on exactly the handbook's test rows: the
known-compromised cards are counted from the handbook's training start, since counting them
from our earlier start would remove more cards and lower every model's reachable CP@100
(we measured the oracle's CP@100 drop from 0.42 to 0.32). Prints our mean over folds next
to the handbook's published best (tuned XGBoost: AP 0.694, AUC 0.872, CP@100 0.304).

Usage: python benchmarks/handbook_protocol.py [--model hist_gradient_boosting]
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import numpy as np
from _common import emit, load_handbook

from fraudops.data import contract as c
from fraudops.data.splits import plan_windows, split
from fraudops.model.evaluation import evaluate
from fraudops.model.pipeline import build_model, fraud_scores
from fraudops.offline.handbook import compute_features
from fraudops.settings import Settings

HANDBOOK_BEST = {"average_precision": 0.694, "roc_auc": 0.872, "card_precision_at_100": 0.304}
NEWEST_TRAIN_START = dt.date(2018, 8, 15)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="hist_gradient_boosting")
    parser.add_argument("--train-days", type=int, default=Settings().train_days)
    parser.add_argument("--folds", type=int, default=4)
    args = parser.parse_args()

    transactions = load_handbook()
    features = compute_features(transactions, label_delay_days=7)
    folds = []
    for fold in range(args.folds):
        handbook_start = NEWEST_TRAIN_START - dt.timedelta(days=7 * fold)
        start = handbook_start - dt.timedelta(days=args.train_days - 7)
        windows = plan_windows(
            transactions[c.TX_DATETIME],
            train_days=args.train_days,
            label_delay_days=7,
            test_days=7,
            train_start=start,
        )
        train, test = split(transactions, windows, known_since=handbook_start)
        began = time.perf_counter()
        model = build_model(args.model, seed=0).fit(features[train], transactions[c.LABEL][train])
        fit_seconds = time.perf_counter() - began
        metrics = evaluate(transactions[test], fraud_scores(model, features[test]), k=100)
        folds.append(
            {
                **windows.as_tags(),
                "fit_seconds": round(fit_seconds, 2),
                "average_precision": metrics.average_precision,
                "roc_auc": metrics.roc_auc,
                "card_precision_at_100": metrics.card_precision_at_k,
            }
        )
    ours = {
        k: float(np.mean([f[k] for f in folds]))
        for k in ("average_precision", "roc_auc", "card_precision_at_100")
    }
    emit(
        "handbook_protocol",
        {
            "model": args.model,
            "train_days": args.train_days,
            "folds": folds,
            "ours_mean": {k: round(v, 4) for k, v in ours.items()},
            "handbook_best_xgboost": HANDBOOK_BEST,
            "target_met": ours["average_precision"] >= 0.70
            and ours["card_precision_at_100"] >= 0.30,
        },
    )


if __name__ == "__main__":
    main()
