"""Benchmark: the drift decision, the risk rule against the share-of-columns rule, same windows.

Trains the champion as the demo does (the shared handbook file before June; its reference, its
permutation importance), computes the features of June to September with the offline engine
(equal to the service's), scores them, and slides the monitored 7-day window one day at a time
from June 7, each window sampled by day to ``monitor_max_rows`` and compared with the reference
(like-for-like weekdays) on the champion's 18 features and its score. Both rules read the same
distances (Evidently's own stat tests: normed Wasserstein, Jensen-Shannon):
- **before**: the rule and comparison as they were: the reference sampled by day (whole
  weeks, the score in sample) and every window from the replay's first day (the first six
  are partial weeks), a window drifted when more than 15 % of the 19 columns reach 0.1;
- **share**: the same column count on like-for-like weekdays and the score compared with the
  champion's holdout scores (today's comparison);
- **risk**: thresholds calibrated on the reference's own weeks, features weighed by the
  champion's permutation importance, the score always counted (:mod:`fraudops.drift.risk`).
All retrain when 2 of the last 3 windows drifted. On the clean replay it also prints how often
each column was beyond 0.1 (the former per-column verdict) and beyond its calibrated threshold.

Scenarios: clean (as recorded), and shifts injected from June 15: ``amount`` (every amount
x2), ``terminals`` (40 newly compromised terminals a day, their transactions frauds for 28
days), and three designed here: ``spend_spikes`` (10 % of transactions at 4x the amount: one
shift of the amount-ratio features the model leans on most), ``night`` (20 % of daytime
transactions moved to the night, the perturbation that was flagged but never decided) and
``new_cards`` (30 % of transactions from cards never seen before: their history features
start from zero).

Prints JSON per rule: false-alarm rate on the clean windows (share of windows flagged, days of
retrain triggers), and per scenario the detection delay (days from the shift to the first
drifted window) and the retrain delay (to the first trigger), with the windows flagged before
the shift.

Usage: python benchmarks/drift_rules.py
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from _common import emit, load_handbook

from fraudops import registry
from fraudops.data import contract as c
from fraudops.drift import monitor
from fraudops.drift.report import (
    SCORE,
    drift_frame,
    like_weekdays,
    run_drift,
    sample_by_day,
    with_holdout_scores,
)
from fraudops.drift.risk import (
    DISTANCES,
    assess,
    calibrate,
    column_distance,
    importance_weights,
)
from fraudops.model.pipeline import fraud_scores
from fraudops.offline.handbook import compute_features
from fraudops.settings import Settings
from pipelines.training import run_training

REPLAY = pd.Timestamp("2018-06-01")
SHIFT = dt.date(2018, 6, 15)
WINDOW = 7


def inject(history: pd.DataFrame, kind: str, seed: int = 0) -> pd.DataFrame:
    """``history`` with the scenario's shift applied from :data:`SHIFT` on."""
    if kind == "clean":
        return history
    rng = np.random.default_rng(seed)
    out = history.copy()
    after = (out[c.TX_DATETIME] >= pd.Timestamp(SHIFT)).to_numpy()
    if kind == "amount":
        out.loc[after, c.TX_AMOUNT] = (out.loc[after, c.TX_AMOUNT] * 2).round(2)
    elif kind == "spend_spikes":
        spiked = after & (rng.random(len(out)) < 0.1)
        out.loc[spiked, c.TX_AMOUNT] = (out.loc[spiked, c.TX_AMOUNT] * 4).round(2)
    elif kind == "night":
        hours = out[c.TX_DATETIME].dt.hour
        day = after & (hours >= 6).to_numpy() & (rng.random(len(out)) < 0.2)
        moved = out.loc[day, c.TX_DATETIME]
        out.loc[day, c.TX_DATETIME] = moved.dt.floor("D") + pd.to_timedelta(
            rng.integers(0, 6 * 3600, int(day.sum())), unit="s"
        )
        out = out.sort_values(c.TX_DATETIME, kind="stable").reset_index(drop=True)
    elif kind == "new_cards":
        chosen = after & (rng.random(len(out)) < 0.3)
        first_new = int(out[c.CUSTOMER_ID].max()) + 1
        out.loc[chosen, c.CUSTOMER_ID] = first_new + np.arange(int(chosen.sum()))
    elif kind == "terminals":
        terminals = out[c.TERMINAL_ID].unique()
        until: dict[int, pd.Timestamp] = {}
        for day in pd.date_range(pd.Timestamp(SHIFT), out[c.TX_DATETIME].max().floor("D")):
            for t in rng.choice(terminals, 40, replace=False).tolist():
                until[t] = day + pd.Timedelta(days=28)
            rows = (out[c.TX_DATETIME].dt.floor("D") == day).to_numpy()
            ends = out.loc[rows, c.TERMINAL_ID].map(until)
            hit = ends.notna() & (out.loc[rows, c.TX_DATETIME] < ends)
            out.loc[hit[hit].index, c.LABEL] = 1
    else:
        raise ValueError(kind)
    return out


def windows(frame: pd.DataFrame, max_rows: int) -> list[tuple[dt.date, pd.DataFrame]]:
    """Each day's 7-day window of the replay (from its first day: the first six are partial),
    sampled by day to ``max_rows``."""
    days = frame[c.TX_DATETIME].dt.floor("D")
    out = []
    for end in pd.date_range(REPLAY, days.max()):
        rows = frame[(days > end - pd.Timedelta(days=WINDOW)) & (days <= end)]
        out.append((end.date(), sample_by_day(rows, c.TX_DATETIME, max_rows)))
    return out


def judge(
    scenario: pd.DataFrame, champion: monitor.Champion, model, settings: Settings, methods
) -> tuple[dict[str, list[tuple[dt.date, bool]]], dict[str, dict[str, int]]]:
    """Per rule, per window: (end day, drifted); and per column, the full windows in which it
    was beyond 0.1 (whole-week reference) and beyond its calibrated threshold (like weekdays)."""
    features = compute_features(scenario)
    frame = features.assign(
        **{SCORE: fraud_scores(model, features[list(champion.columns.features)])},
        **{c.TX_DATETIME: scenario[c.TX_DATETIME]},
    )
    frame = frame[frame[c.TX_DATETIME] >= REPLAY]
    columns = champion.columns
    calibration = calibrate(
        champion.reference, columns, methods, WINDOW, score_reference=champion.score_reference
    )
    weights = importance_weights(columns.features, champion.importance)
    numerical = set(columns.numerical)
    verdicts: dict[str, list[tuple[dt.date, bool]]] = {"before": [], "share": [], "risk": []}
    flags: dict[str, dict[str, int]] = {"beyond_0.1": {}, "beyond_calibrated": {}}
    full = REPLAY.date() + dt.timedelta(days=WINDOW - 1)
    for end, current in windows(frame, settings.monitor_max_rows):
        whole = sample_by_day(champion.reference, c.TX_DATETIME, len(current))
        old = _distances(whole, current, columns, methods, numerical)
        share = sum(v >= 0.1 for v in old.values()) / len(old)
        verdicts["before"].append((end, share > settings.drift_share_threshold))
        if end < full:
            continue
        reference = like_weekdays(champion.reference, current, c.TX_DATETIME, len(current))
        if champion.score_reference is not None:  # the score against out-of-sample scores
            reference = with_holdout_scores(reference, champion.score_reference, current)
        scores = _distances(reference, current, columns, methods, numerical)
        share = sum(v >= 0.1 for v in scores.values()) / len(scores)
        verdicts["share"].append((end, share > settings.drift_share_threshold))
        risk = assess(scores, methods, [], calibration, weights, settings.drift_risk_threshold)
        verdicts["risk"].append((end, risk.drifted))
        for col, value in old.items():
            flags["beyond_0.1"][col] = flags["beyond_0.1"].get(col, 0) + int(value >= 0.1)
        for col, value in scores.items():
            over = int(value > calibration.thresholds[col])
            flags["beyond_calibrated"][col] = flags["beyond_calibrated"].get(col, 0) + over
    return verdicts, flags


def _distances(reference, current, columns, methods, numerical) -> dict[str, float]:  # type: ignore[no-untyped-def]
    ref, cur = drift_frame(reference, columns), drift_frame(current, columns)
    return {
        col: column_distance(ref[col], cur[col], methods[col], col in numerical)
        for col in columns.monitored
    }


def triggers(verdicts: list[tuple[dt.date, bool]]) -> list[dt.date]:
    """Days a 2-of-the-last-3 rule would retrain (no cooldown: every trigger)."""
    flags = [d for _, d in verdicts]
    return [end for i, (end, _) in enumerate(verdicts) if sum(flags[max(0, i - 2) : i + 1]) >= 2]


def main() -> None:
    handbook = load_handbook()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        history = root / "history.parquet"
        handbook[handbook[c.TX_DATETIME] < REPLAY].to_parquet(history)
        # the demo's first champion: trained on May (April fills the windows), 17 days + gap
        settings = Settings(
            home=root / "home", data_path=history, train_start="2018-05-01", train_days=17
        )
        run_training(settings)
        champion = monitor.load_champion_reference(settings)
        client = registry.client_for(settings)
        version = client.get_model_version(settings.model_name, champion.version)
        model = registry.load_verified(settings, champion.version, dict(version.tags))
        probe = handbook[handbook[c.TX_DATETIME] >= REPLAY]
        _, figures = run_drift(  # Evidently's choice of test per column, as the monitor gets it
            champion.reference,
            compute_features(handbook)
            .assign(**{SCORE: 0.5, c.TX_DATETIME: handbook[c.TX_DATETIME]})
            .loc[probe.index[:20_000]],
            threshold=0.5,
            columns=champion.columns,
        )
        methods = figures.column_methods
        assert set(methods.values()) <= set(DISTANCES), methods
        results: dict[str, object] = {"importance": champion.importance}
        for kind in ("clean", "amount", "terminals", "spend_spikes", "night", "new_cards"):
            verdicts, columns_flagged = judge(
                inject(handbook, kind), champion, model, settings, methods
            )
            for rule, flags in verdicts.items():
                fired = triggers(flags)
                if kind == "clean":
                    results["clean_windows_per_column_flagged"] = {
                        name: {k: v for k, v in counts.items() if v}
                        for name, counts in columns_flagged.items()
                    }
                    results[f"{rule}_clean"] = {
                        "windows": len(flags),
                        "false_alarm_rate": round(sum(d for _, d in flags) / len(flags), 3),
                        "retrain_triggers": len(fired),
                        "first_trigger": str(fired[0]) if fired else None,
                    }
                    continue
                after = [(e, d) for e, d in flags if e >= SHIFT]
                first = next((e for e, d in after if d), None)
                trigger = next((e for e in fired if e >= SHIFT), None)
                results[f"{rule}_{kind}"] = {
                    "flagged_before_shift": sum(d for e, d in flags if e < SHIFT),
                    "detection_delay_days": None if first is None else (first - SHIFT).days,
                    "retrain_delay_days": None if trigger is None else (trigger - SHIFT).days,
                }
    emit("drift_rules", results)


if __name__ == "__main__":
    main()
