"""Performance before labels arrive: confidence-based performance estimation (CBPE).

The method of NannyML's CBPE (NannyML documentation, "Confidence-based Performance
Estimation"): once the scores are calibrated, a transaction of calibrated score p is a fraud
with probability p, so the expected confusion matrix of an unlabelled window, and the expected
average precision, follow from its scores alone. Calibration is fitted on the most recent
labelled window of the same champion (isotonic regression, scikit-learn's
``IsotonicRegression``), so it follows the live base rate; the estimate holds under covariate
shift (the score-to-fraud relation unchanged), not under concept drift, which only the labels
show: the real labelled figures replace the estimate as soon as they arrive.

NannyML itself is not a dependency: 0.13.1 installs beside the pinned stack but does not import
without statsmodels (undeclared), adds about 1.1 GB (xgboost, a CUDA NCCL wheel, kaleido, cloud
storage SDKs) to a CPU-only project, and sends usage analytics by default; this module is the
part of it the monitor needs, tested against realized figures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

#: Fewest labelled rows, and labelled frauds, to calibrate on.
MIN_ROWS, MIN_FRAUDS = 1_000, 10


@dataclass(frozen=True)
class EstimatedPerformance:
    """Expected figures of an unlabelled window (each in [0, 1]).

    Attributes:
        average_precision: expected AP of the window's scores.
        precision_at_threshold, recall_at_threshold: expected at the champion's threshold.
        fraud_rate: expected share of frauds.
        rows: scores of the window; calibrated_on: labelled rows the calibration used.
    """

    average_precision: float
    precision_at_threshold: float
    recall_at_threshold: float
    fraud_rate: float
    rows: int
    calibrated_on: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def expected_average_precision(probabilities: np.ndarray, scores: np.ndarray) -> float:
    """Expected AP when event i is a fraud with probability ``probabilities[i]``, ranked by
    ``scores`` (descending): Σ_k p_k · precision@k / Σ p, with precision@k the expected hits
    among the first k (the first-order expectation of AP's ratio)."""
    order = np.argsort(-scores, kind="mergesort")
    p = probabilities[order]
    total = p.sum()
    if total <= 0:
        return float("nan")
    precision = np.cumsum(p) / np.arange(1, len(p) + 1)
    return float((p * precision).sum() / total)


def estimate(
    labelled_scores: np.ndarray,
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float,
) -> EstimatedPerformance | None:
    """CBPE of a window from its scores, calibrated on labelled rows of the same model.

    Args:
        labelled_scores, labels: m scored rows whose labels arrived (0/1).
        scores: the n scores of the window to estimate.
        threshold: the champion's decision threshold.

    Returns:
        The estimate; None with fewer than :data:`MIN_ROWS` labelled rows or
        :data:`MIN_FRAUDS` frauds, or an empty window.
    """
    from sklearn.isotonic import IsotonicRegression

    labels = np.asarray(labels, dtype=np.float64)
    if len(labels) < MIN_ROWS or labels.sum() < MIN_FRAUDS or not len(scores):
        return None
    calibrate = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    calibrate.fit(np.asarray(labelled_scores, dtype=np.float64), labels)
    scores = np.asarray(scores, dtype=np.float64)
    p = calibrate.predict(scores)
    alerts = scores >= threshold
    hits = float(p[alerts].sum())
    frauds = float(p.sum())
    return EstimatedPerformance(
        average_precision=expected_average_precision(p, scores),
        precision_at_threshold=hits / alerts.sum() if alerts.any() else float("nan"),
        recall_at_threshold=hits / frauds if frauds > 0 else float("nan"),
        fraud_rate=frauds / len(scores),
        rows=len(scores),
        calibrated_on=len(labels),
    )
