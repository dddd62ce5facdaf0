"""Drift that means model risk: per-column thresholds calibrated on clean data, columns weighed
by the champion's feature importance, the score's drift always counted.

The share-of-columns rule counts every column alike with one fixed threshold (0.1): a column
that moves between any two clean weeks (a 30-day count on a growing population, the weekend
share of a partial week) is flagged every day and eats the budget, while one strong shift of
the model's most important feature never reaches it. This rule instead:

1. **calibrates** each column's threshold on the champion's reference (a day-stratified sample
   of its training window): the reference is cut into consecutive full windows of the monitored
   length, each is compared with the rest of the reference with the column's own test (the one
   Evidently chose for it in the run, from Evidently's stat-test registry, so the figures are the
   report's), and the threshold is ``max(base, margin x the largest clean distance)``; the
   score's noise is measured on the champion's holdout scores (out of sample, what live scores
   are compared with), not on its in-sample training scores;
2. **weighs** each drifted feature by the champion's permutation importance on its holdout
   (tag ``feature_importance`` of its model card; equal weights for versions without it), and
   calls the window drifted when the drifted features hold at least ``risk_threshold`` of the
   importance, or when the score itself drifted (prediction drift) beyond its threshold;
3. judges **full windows only**: a window with fewer days of traffic than the monitored length
   is measured and recorded, never called drifted.

p-value tests (Evidently's choice for windows of at most 1,000 rows) are not calibrated: their
columns keep Evidently's verdict.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fraudops.data import contract as c
from fraudops.drift.report import SCORE, DriftColumns, drift_frame

#: Distance tests (drift when the score is above the threshold) by Evidently's display name.
DISTANCES = ("Wasserstein distance (normed)", "Jensen-Shannon distance")


@dataclass(frozen=True)
class Calibration:
    """Per-column thresholds calibrated on the reference's clean windows.

    Attributes:
        thresholds: column → threshold of its distance (at least ``base``).
        noise: column → the largest distance between a clean window and the rest.
        windows: how many full clean windows were compared (0: none fit, base thresholds).
        methods: column → the test the distances were computed with.
    """

    thresholds: dict[str, float]
    noise: dict[str, float]
    windows: int
    methods: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        return cls(**json.loads(text))


def column_distance(
    reference: pd.Series, current: pd.Series, method: str, numerical: bool
) -> float:
    """The distance Evidently's ``method`` gives ``current`` against ``reference`` (the same
    stat-test implementation the report runs; values as :func:`drift_frame` makes them).

    Raises:
        ValueError: ``method`` is not one of :data:`DISTANCES`.
    """
    from evidently.legacy.calculations.stattests import (
        jensenshannon_stat_test,
        wasserstein_stat_test,
    )
    from evidently.legacy.core import ColumnType

    tests = dict(zip(DISTANCES, (wasserstein_stat_test, jensenshannon_stat_test), strict=True))
    if method not in tests:
        raise ValueError(f"{method!r} is not a calibrated distance ({', '.join(DISTANCES)})")
    kind = ColumnType.Numerical if numerical else ColumnType.Categorical
    with np.errstate(divide="ignore", invalid="ignore"):
        result = tests[method](reference.dropna(), current.dropna(), kind, None)
    return float(result.drift_score)


def calibrate(
    reference: pd.DataFrame,
    columns: DriftColumns,
    methods: Mapping[str, str],
    window_days: int,
    *,
    base: float = 0.1,
    margin: float = 1.5,
    score_reference: pd.DataFrame | None = None,
) -> Calibration:
    """Calibrated thresholds from the reference's own day-to-day variation.

    Args:
        reference: the champion's reference (rows × ``columns.monitored`` and ``TX_DATETIME``).
        methods: column → the test Evidently chose (``DriftFigures.column_methods``); columns
            with a p-value test keep ``base``.
        window_days: the monitored window's length; the reference is cut into consecutive
            full windows of it (a partial last window is dropped).
        base: the report's threshold, the floor; margin: ≥ 1, the multiple of the clean noise.
        score_reference: the champion's holdout scores (``TX_DATETIME``, ``score``), which
            the monitor compares the score with; when given, the score's noise is measured on
            them (:func:`score_noise`), not on the reference's in-sample scores.

    Returns:
        The calibration (``windows`` 0 and base thresholds when fewer than two full windows fit).
    """
    monitored = list(columns.monitored)
    base_only = Calibration(dict.fromkeys(monitored, base), dict.fromkeys(monitored, 0.0), 0)
    if c.TX_DATETIME not in reference:
        return base_only
    days = reference[c.TX_DATETIME].dt.floor("D")
    first = days.min()
    window = ((days - first).dt.days // window_days).to_numpy()
    full = int((days.max() - first).days + 1) // window_days
    if full < 2:
        return base_only
    frame = drift_frame(reference, columns)
    numerical = set(columns.numerical)
    noise: dict[str, float] = {}
    for column in monitored:
        method = methods.get(column, "")
        if method not in DISTANCES:
            noise[column] = 0.0
        elif column == SCORE and score_reference is not None:
            noise[column] = score_noise(score_reference, method, window_days)
        else:
            noise[column] = _largest_distance(
                frame[column], window, full, method, column in numerical
            )
    thresholds = {col: max(base, margin * noise[col]) for col in monitored}
    return Calibration(thresholds, noise, full, {k: methods.get(k, "") for k in monitored})


def _largest_distance(
    values: pd.Series, window: np.ndarray, full: int, method: str, numerical: bool
) -> float:
    """The largest distance between one of the ``full`` windows and the rest of ``values``."""
    return max(
        column_distance(values[window != k], values[window == k], method, numerical)
        for k in range(full)
    )


def score_noise(score_reference: pd.DataFrame, method: str, window_days: int) -> float:
    """The score's clean noise on its holdout scores: the holdout (usually one week) is cut
    into the longest consecutive windows that fit twice, at most ``window_days`` long, and
    each is compared with the rest. Shorter windows vary more than the monitored one, so the
    threshold errs towards fewer alarms. 0 when fewer than two days hold scores."""
    days = pd.to_datetime(score_reference[c.TX_DATETIME]).dt.floor("D")
    span = int((days.max() - days.min()).days) + 1 if len(days) else 0
    length = min(window_days, span // 2)
    if length < 1:
        return 0.0
    window = ((days - days.min()).dt.days // length).to_numpy()
    values = score_reference[SCORE].astype(float)
    return _largest_distance(values, window, span // length, method, numerical=True)


@dataclass(frozen=True)
class RiskFigures:
    """One window judged by the risk rule.

    Attributes:
        drifted: whether the window drifted (a full window whose risk is at or above the
            threshold, or whose score drifted).
        risk: share of the champion's importance held by features beyond their threshold.
        drifted_features: those features; prediction_drift: the score beyond its threshold.
        thresholds: column → the threshold applied; weights: feature → its importance share.
        full_window: the window holds every day of the monitored length; a partial one (the
            first days of a replay or a deployment) is measured but never judged drifted: its
            few rows vary more than the full windows the thresholds were calibrated on.
    """

    drifted: bool
    risk: float
    drifted_features: list[str]
    prediction_drift: bool
    thresholds: dict[str, float]
    weights: dict[str, float]
    full_window: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def importance_weights(
    features: tuple[str, ...], importance: Mapping[str, float]
) -> dict[str, float]:
    """Each feature's share of the importance (negatives count as 0; equal shares when the
    card records none or all are 0); values in [0, 1] summing to 1."""
    raw = np.array([max(float(importance.get(f, 0.0)), 0.0) for f in features])
    if not np.isfinite(raw).all() or raw.sum() <= 0:
        raw = np.ones(len(features))
    return dict(zip(features, (raw / raw.sum()).tolist(), strict=True))


def assess(
    scores: Mapping[str, float],
    methods: Mapping[str, str],
    evidently_drifted: list[str],
    calibration: Calibration,
    weights: Mapping[str, float],
    risk_threshold: float,
    full_window: bool = True,
) -> RiskFigures:
    """Judge one window's column distances (``DriftFigures.column_scores``) by the risk rule.

    A column with a distance test drifts when its distance exceeds its calibrated threshold;
    one with a p-value test when Evidently flagged it (``evidently_drifted``). A window that
    is not ``full_window`` is never drifted (:class:`RiskFigures`).
    """

    def beyond(column: str) -> bool:
        if methods.get(column) in DISTANCES:
            return scores[column] > calibration.thresholds.get(column, np.inf)
        return column in evidently_drifted

    drifted = [f for f in weights if f in scores and beyond(f)]
    risk = float(sum(weights[f] for f in drifted))
    prediction = SCORE in scores and beyond(SCORE)
    return RiskFigures(
        drifted=full_window and (risk >= risk_threshold or prediction),
        risk=round(risk, 4),
        drifted_features=drifted,
        prediction_drift=prediction,
        thresholds={k: round(v, 4) for k, v in calibration.thresholds.items()},
        weights={k: round(v, 4) for k, v in weights.items()},
        full_window=full_window,
    )


def cached_calibration(
    folder: Path,
    version: str,
    make: Any,
) -> Calibration:
    """The champion's calibration, computed once by ``make()`` and kept as
    ``calibration-v<version>.json`` in ``folder``."""
    path = folder / f"calibration-v{version}.json"
    if path.is_file():
        return Calibration.from_json(path.read_text())
    calibration: Calibration = make()
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(calibration.to_json())
    return calibration
