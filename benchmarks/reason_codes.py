"""Benchmark: reason codes per alert (exact TreeSHAP) and the scorer's throughput with them.

Trains the default model on the shared handbook file (history before 2018-07-15, as
``batch_scoring.py``), then on the next real transactions:

1. **Latency per alert** of :class:`fraudops.model.explain.Explainer` (exact path-dependent
   TreeSHAP through ``shap.TreeExplainer``, top 3 with phrases), one row per call as the
   service does for a single transaction; peer in the same run: shap's Saabas approximation
   (``approximate=True``, the path attribution of Saabas' treeinterpreter), which is what one
   would pick to go faster, and how often its top 3 differ from the exact one's.
2. **Single-transaction throughput** of the service's scoring path without HTTP
   (:class:`fraudops.serving.scorer.Scorer`, one event per call, log writes included): reason
   codes off, on for alerts (the default) and on for every transaction (``?explain=true``).

3. **A model with categorical splits** (the ``cards`` spec on 60 days of the card simulator,
   2,000 cards): latency per row of the exact contributions (each categorical split routed
   as scikit-learn routes the row, :mod:`fraudops.model.category_shap`) and their largest
   distance to the model's log-odds; peer: shap alone, which reads the category sets as
   thresholds, and its distance.

Prints JSON. Target (issue 14): at most 2 ms added per alert (p50).

Usage: python benchmarks/reason_codes.py [--rows 3000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import emit, load_handbook

from fraudops.data import contract as c
from fraudops.serving.scorer import Scorer
from fraudops.settings import Settings
from fraudops.streaming.handbook_state import Transaction
from pipelines.training import run_training

TRAIN_START = "2018-05-01"
FIRST = pd.Timestamp("2018-07-15")


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
    }


def _per_row(fn, rows) -> list[float]:
    times = []
    for i in range(len(rows)):
        began = time.perf_counter()
        fn(rows[i : i + 1])
        times.append(time.perf_counter() - began)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=3000, help="Transactions scored per mode.")
    args = parser.parse_args()
    handbook = load_handbook()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        history = root / "history.parquet"
        handbook[handbook[c.TX_DATETIME] < FIRST].to_parquet(history)
        base = Settings(home=root / "home", data_path=history)
        run_training(Settings(home=root / "home", data_path=history, train_start=TRAIN_START))
        later = handbook[handbook[c.TX_DATETIME] >= FIRST].head(3 * args.rows)
        events = [
            Transaction(
                r.TRANSACTION_ID, r.TX_DATETIME, r.CUSTOMER_ID, r.TERMINAL_ID, r.TX_AMOUNT
            ).as_event()
            for r in later.itertuples(index=False)
        ]
        figures: dict[str, object] = {}
        explained_rows: list[dict] = []
        for mode, (k, explain) in {
            "reason_codes_off": (0, False),
            "reason_codes_for_alerts": (3, False),
            "reason_codes_for_every_transaction": (3, True),
        }.items():
            settings = Settings(
                home=root / mode,
                data_path=history,
                tracking_uri=base.resolved_tracking_uri,
                reason_codes=k,
            )
            scorer = Scorer.start(settings, poll=False)
            chunk = events[: args.rows]  # each mode: a fresh state, the same transactions
            times, alerts = [], 0
            for event in chunk:
                began = time.perf_counter()
                (out,) = scorer.score([event], explain=explain)
                times.append(time.perf_counter() - began)
                alerts += out["decision"] == "alert"
                if explain and len(explained_rows) < 1000:
                    explained_rows.append(out["features"])
            figures[mode] = {
                "transactions": len(chunk),
                "alerts": alerts,
                "per_s": round(len(chunk) / sum(times)),
                **_percentiles(times),
            }
            model = scorer.champion
            scorer.close()

        explainer = model.explainer
        matrix = np.array([[row[f] for f in model.features] for row in explained_rows])
        exact = _per_row(explainer.contributions, matrix)
        reasons = _per_row(
            lambda m: explainer.reasons(m, [dict(zip(model.features, m[0], strict=True))], 3),
            matrix,
        )
        tree = explainer._tree
        saabas = _per_row(lambda m: tree.shap_values(m, approximate=True), matrix)
        top_exact = np.argsort(-explainer.contributions(matrix), axis=1)[:, :3]
        top_saabas = np.argsort(-tree.shap_values(matrix, approximate=True), axis=1)[:, :3]
        figures["per_alert"] = {
            "rows": len(matrix),
            "exact_treeshap_contributions": _percentiles(exact),
            "exact_treeshap_top3_with_phrases": _percentiles(reasons),
            "peer_saabas_contributions": _percentiles(saabas),
            "saabas_top3_differs_share": round(
                float(
                    np.mean([set(a) != set(b) for a, b in zip(top_exact, top_saabas, strict=True)])
                ),
                3,
            ),
            "saabas_top1_differs_share": round(
                float(np.mean(top_exact[:, 0] != top_saabas[:, 0])), 3
            ),
        }
    figures["categorical_model"] = categorical_model()
    emit("reason_codes", figures)


def categorical_model() -> dict[str, object]:
    """Exact contributions of a categorical model vs shap's threshold reading (item 3)."""
    import shap
    from scipy.special import logit

    from fraudops.data.card_simulator import CardSimulationConfig, simulate_card_payments
    from fraudops.model.explain import Explainer
    from fraudops.model.pipeline import build_model
    from fraudops.offline.engine import compute_spec_features
    from fraudops.spec import load_spec
    from fraudops.spec.data import prepare_events

    spec = load_spec("cards")
    raw = simulate_card_payments(CardSimulationConfig(days=60, n_cards=2000, n_merchants=800))
    events = prepare_events(raw, spec, require_label=True)
    features = spec.feature_names()
    frame = compute_spec_features(events, spec)[features]
    model = build_model(
        features=features, categorical=spec.categorical_features(), max_categories=30
    ).fit(frame, events[spec.label.column])
    rows = frame.tail(500)
    explainer = Explainer(model, features, spec)
    exact_times = _per_row(lambda r: explainer.contributions(r), rows)
    log_odds = logit(model.predict_proba(rows)[:, 1])
    exact = explainer.contributions(rows)
    encoded = model.named_steps["select"].transform(rows)
    plain = shap.TreeExplainer(model.named_steps["model"], model_output="raw")
    naive = plain.shap_values(encoded, check_additivity=False)
    return {
        "rows": len(rows),
        "training_rows": len(frame),
        "exact_contributions": _percentiles(exact_times),
        "exact_max_distance_to_log_odds": float(
            np.abs(explainer.base + exact.sum(axis=1) - log_odds).max()
        ),
        "peer_shap_alone_max_distance_to_log_odds": round(
            float(
                np.abs(
                    float(np.ravel(plain.expected_value)[0]) + naive.sum(axis=1) - log_odds
                ).max()
            ),
            3,
        ),
    }


if __name__ == "__main__":
    main()
