"""Out-of-time evaluation metrics for fraud models.

Definitions follow the Fraud Detection Handbook, chapter 4 ("Performance metrics"): average
precision (PR-AUC) and ROC AUC over transactions; Card Precision@k, the daily share of compromised
cards among the k cards with the highest fraud score, averaged over the days, with cards detected
on earlier days removed; recall at a fixed false-positive rate; the decision threshold that keeps
alerts within an alert budget.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from fraudops.data import contract as c
from fraudops.spec.model import Roles


class EvaluationError(ValueError):
    """The holdout cannot be evaluated (no rows, or only one class)."""


def recall_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    """Highest recall (true-positive rate) reachable with a false-positive rate ≤ ``fpr``.

    Args:
        labels: n values in {0, 1}, both classes present.
        scores: n fraud scores; higher means more suspicious.
        fpr: the operating false-positive rate, in (0, 1).
    """
    false_pos, true_pos, _ = roc_curve(labels, scores)
    return float(true_pos[false_pos <= fpr].max())


def threshold_for_alert_rate(scores: np.ndarray, alert_rate: float) -> float:
    """Smallest score threshold at which at most ``alert_rate`` of transactions alert.

    A transaction alerts when its score is ≥ the threshold. Returns a value in [0, 1] for
    probability scores; ties at the boundary stay below the budget.
    """
    if len(scores) == 0:
        raise EvaluationError("no scores to set a threshold on")
    budget = int(np.floor(alert_rate * len(scores)))
    ranked = np.sort(scores)[::-1]
    if budget == 0:
        return float(np.nextafter(ranked[0], np.inf))
    candidate = ranked[budget - 1]
    if budget < len(ranked) and ranked[budget] == candidate:
        return float(np.nextafter(candidate, np.inf))  # a tie would push alerts over budget
    return float(candidate)


def daily_precision_at_k(
    frame: pd.DataFrame, scores: np.ndarray, k: int, roles: Roles = c.HANDBOOK_ROLES
) -> pd.Series:
    """Card Precision@k of each day, cards already detected on earlier days removed.

    Args:
        frame: n rows with the time, label and entity columns of ``roles``.
        scores: n fraud scores aligned with ``frame``.
        k: cards inspected per day (the handbook uses 100).
        roles: the columns to read; with no entity (``roles.entity`` None) each event is
            ranked on its own (Precision@k of events per day).

    Returns:
        Shares in [0, 1] indexed by day (midnight timestamps), in day order. The handbook's
        ``card_precision_top_k_day`` per day.
    """
    entity = roles.entity or roles.event_id
    cards = pd.DataFrame(
        {
            "day": frame[roles.time].dt.floor("D").to_numpy(),
            "card": frame[entity].to_numpy(),
            "label": frame[roles.label].to_numpy(),
            "score": np.asarray(scores),
        }
    )
    per_day = cards.groupby(["day", "card"], sort=True).max()
    detected: set[object] = set()
    daily = {}
    for when, day in per_day.groupby(level="day", sort=True):
        day = day.droplevel("day")
        day = day[~day.index.isin(list(detected))]
        top = day.nlargest(k, "score", keep="first")
        found = top.index[top["label"] == 1]
        daily[when] = len(found) / k
        detected.update(found.tolist())
    return pd.Series(daily, dtype=np.float64)


def card_precision_at_k(
    frame: pd.DataFrame, scores: np.ndarray, k: int, roles: Roles = c.HANDBOOK_ROLES
) -> float:
    """Card Precision@k averaged over days (:func:`daily_precision_at_k`), a share in [0, 1];
    equal to the handbook's ``card_precision_top_k``."""
    return float(np.mean(daily_precision_at_k(frame, scores, k, roles).to_numpy()))


@dataclass(frozen=True)
class Metrics:
    """Holdout figures of one model; every value in [0, 1] except ``threshold`` (a score)."""

    average_precision: float
    roc_auc: float
    card_precision_at_k: float
    recall_at_fpr: float
    threshold: float
    precision_at_threshold: float
    recall_at_threshold: float
    n_rows: int
    n_frauds: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def evaluate(
    holdout: pd.DataFrame,
    scores: np.ndarray,
    *,
    k: int = 100,
    fpr: float = 0.01,
    alert_rate: float = 0.01,
    roles: Roles = c.HANDBOOK_ROLES,
) -> Metrics:
    """All holdout metrics for one model's scores.

    Args:
        holdout: n rows with the time, label and entity columns of ``roles``.
        scores: n fraud scores in [0, 1].
        k: Card Precision@k's cards per day.
        fpr: operating false-positive rate for recall at a fixed FPR.
        alert_rate: alert budget as a share of transactions; sets the decision threshold.
        roles: which columns are the time, the label and the ranked entity.

    Raises:
        EvaluationError: the holdout is empty or holds a single class.
    """
    labels = holdout[roles.label].to_numpy()
    if len(labels) == 0:
        raise EvaluationError("the test window has no transactions")
    if labels.min() == labels.max():
        raise EvaluationError(
            f"the test window's {roles.label} holds only class {int(labels[0])} in {len(labels):,} "
            "rows; metrics need frauds (1) and genuine transactions (0)"
        )
    threshold = threshold_for_alert_rate(scores, alert_rate)
    alerts = scores >= threshold
    return Metrics(
        average_precision=float(average_precision_score(labels, scores)),
        roc_auc=float(roc_auc_score(labels, scores)),
        card_precision_at_k=card_precision_at_k(holdout, scores, k, roles),
        recall_at_fpr=recall_at_fpr(labels, scores, fpr),
        threshold=threshold,
        precision_at_threshold=float(labels[alerts].mean()) if alerts.any() else 0.0,
        recall_at_threshold=float(labels[alerts].sum() / labels.sum()),
        n_rows=len(labels),
        n_frauds=int(labels.sum()),
    )
