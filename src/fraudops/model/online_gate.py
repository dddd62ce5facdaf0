"""The online gate: champion and challenger judged on the same live, labelled transactions.

Both models scored every event of the comparison (the challenger in shadow or canary), so the
comparison is *paired*: each bootstrap resample draws events (rows) with replacement and
computes both models' figure on the same draw, and the interval is that of the difference
(challenger − champion), percentile method (Efron & Tibshirani, *An Introduction to the
Bootstrap*, 1993, ch. 13). Card Precision@k is a daily figure (the Fraud Detection Handbook's
definition, :func:`fraudops.model.evaluation.daily_precision_at_k`): its interval resamples
days.

Rule (a non-inferiority test, as A/B platforms run guardrail metrics): with fewer than
``min_frauds`` labelled frauds, wait; reject when the difference of average precision or of
recall at the operating FPR is below ``-tolerance`` with confidence (upper bound under it);
promote when both are above ``-tolerance`` with confidence (lower bounds over it); otherwise
wait, and reject as inconclusive once the stage has lasted ``max_days``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from fraudops.model.evaluation import daily_precision_at_k, recall_at_fpr
from fraudops.spec.model import Roles

PROMOTE, REJECT, WAIT = "promote", "reject", "wait"
#: Columns of the paired frame: both scores, the label, the time and the ranked entity.
CHAMPION_SCORE, CHALLENGER_SCORE, LABEL, TIME, ENTITY = (
    "champion_score",
    "challenger_score",
    "is_fraud",
    "tx_datetime",
    "entity",
)
_ROLES = Roles(event_id=ENTITY, time=TIME, label=LABEL, entity=ENTITY, drop_known=False)


@dataclass(frozen=True)
class OnlineRule:
    """The online gate's rule.

    Attributes:
        ap_tolerance, recall_tolerance: how far (absolute, in [0, 1]) the challenger may trail.
        min_frauds: labelled frauds needed before judging (≥ 1).
        max_days: stage length (days) after which an undecided challenger is rejected.
        confidence: level of the two-sided intervals, in (0, 1).
        resamples: bootstrap resamples (≥ 50).
        fpr: operating false-positive rate of the recall figure, in (0, 1).
        k: cards per day of Card Precision@k.
        seed: of the resampling (the same evidence gives the same decision).
    """

    ap_tolerance: float = 0.02
    recall_tolerance: float = 0.05
    min_frauds: int = 30
    max_days: int = 14
    confidence: float = 0.9
    resamples: int = 500
    fpr: float = 0.01
    k: int = 100
    seed: int = 0


@dataclass(frozen=True)
class Interval:
    """A figure (challenger − champion for a difference) and its bootstrap interval."""

    estimate: float
    low: float
    high: float

    def text(self) -> str:
        return f"{self.estimate:+.4f} [{self.low:+.4f}, {self.high:+.4f}]"


@dataclass(frozen=True)
class ModelFigures:
    """One model's figures on the paired events, each in [0, 1] (NaN when undefined)."""

    average_precision: float
    recall_at_fpr: float
    precision_at_k: float
    alert_rate: float
    precision_at_threshold: float


@dataclass(frozen=True)
class OnlineDecision:
    """The online gate's verdict (:data:`PROMOTE`, :data:`REJECT` or :data:`WAIT`), why, and
    every figure it used; ``differences`` maps a figure's name to its paired interval."""

    verdict: str
    reasons: list[str]
    rows: int
    frauds: int
    days: int
    stage_days: float
    rule: OnlineRule
    champion: ModelFigures | None = None
    challenger: ModelFigures | None = None
    differences: dict[str, Interval] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def summary(self) -> str:
        return f"{self.verdict}: " + "; ".join(self.reasons)


def _figures(
    frame: pd.DataFrame, scores: np.ndarray, threshold: float, rule: OnlineRule
) -> ModelFigures:
    labels = frame[LABEL].to_numpy()
    alerts = scores >= threshold
    return ModelFigures(
        average_precision=float(average_precision_score(labels, scores)),
        recall_at_fpr=recall_at_fpr(labels, scores, rule.fpr),
        precision_at_k=float(daily_precision_at_k(frame, scores, rule.k, _ROLES).mean()),
        alert_rate=float(alerts.mean()),
        precision_at_threshold=float(labels[alerts].mean()) if alerts.any() else float("nan"),
    )


#: Resamples weighed at once (a batch holds _BATCH x n weights).
_BATCH = 25


class _Ranked:
    """One model's scores sorted once, for weighted figures of many resamples at a time.

    A resample is a weight per event (how often it was drawn); each figure is computed from
    cumulative weighted sums over the events in descending score order, read at the last event
    of each tied score (scikit-learn's thresholds): equal to scikit-learn's
    ``average_precision_score`` and to :func:`fraudops.model.evaluation.recall_at_fpr` on the
    resampled rows (tested with unit weights and with resampled rows).
    """

    def __init__(self, scores: np.ndarray, labels: np.ndarray) -> None:
        order = np.argsort(-scores, kind="mergesort")
        self.order = order
        self.labels = labels[order]
        ordered = scores[order]
        self.ends = np.flatnonzero(np.r_[ordered[1:] != ordered[:-1], True])

    def _cumulative(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = weights[:, self.order]
        hits = np.cumsum(w * self.labels, axis=1)[:, self.ends]
        seen = np.cumsum(w, axis=1)[:, self.ends]
        return hits, seen

    def average_precision(self, weights: np.ndarray) -> np.ndarray:
        """AP of each resample (rows of ``weights``, b x n): Σ (R_k − R_{k−1}) P_k."""
        hits, seen = self._cumulative(weights)
        recall = hits / hits[:, -1:]
        gained = np.diff(recall, axis=1, prepend=0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(seen > 0, hits / seen, 0.0)
        return (gained * precision).sum(axis=1)

    def recall_at_fpr(self, weights: np.ndarray, fpr: float) -> np.ndarray:
        """Highest recall with a false-positive rate ≤ ``fpr``, per resample."""
        hits, seen = self._cumulative(weights)
        false = seen - hits
        rates = false / false[:, -1:]
        recall = hits / hits[:, -1:]
        return np.where(rates <= fpr, recall, 0.0).max(axis=1)


def _interval(draws: np.ndarray, estimate: float, confidence: float) -> Interval:
    tail = (1.0 - confidence) / 2 * 100
    finite = draws[np.isfinite(draws)]
    if not len(finite):
        return Interval(estimate, float("nan"), float("nan"))
    low, high = np.percentile(finite, [tail, 100 - tail])
    return Interval(float(estimate), float(low), float(high))


def paired_differences(
    frame: pd.DataFrame,
    thresholds: tuple[float, float],
    rule: OnlineRule,
) -> tuple[ModelFigures, ModelFigures, dict[str, Interval]]:
    """Both models' figures and the paired intervals of their differences.

    Args:
        frame: n labelled events, columns :data:`CHAMPION_SCORE`, :data:`CHALLENGER_SCORE`
            (in [0, 1]), :data:`LABEL` (0/1, both present), :data:`TIME` (datetime) and
            :data:`ENTITY` (the ranked entity of Precision@k, or the event id).
        thresholds: (champion's, challenger's) decision thresholds.

    Returns:
        (champion figures, challenger figures, name → :class:`Interval` of challenger −
        champion for each :class:`ModelFigures` field).
    """
    old_scores = frame[CHAMPION_SCORE].to_numpy(dtype=np.float64)
    new_scores = frame[CHALLENGER_SCORE].to_numpy(dtype=np.float64)
    old = _figures(frame, old_scores, thresholds[0], rule)
    new = _figures(frame, new_scores, thresholds[1], rule)
    labels = frame[LABEL].to_numpy().astype(np.float64)
    rng = np.random.default_rng(rule.seed)
    n = len(frame)
    ranked = [_Ranked(scores, labels) for scores in (old_scores, new_scores)]
    alerts = [old_scores >= thresholds[0], new_scores >= thresholds[1]]
    draws: dict[str, list[np.ndarray]] = {
        "average_precision": [],
        "recall_at_fpr": [],
        "alert_rate": [],
        "precision_at_threshold": [],
    }
    for start in range(0, rule.resamples, _BATCH):
        size = min(_BATCH, rule.resamples - start)
        # a resample with replacement is its counts: row i drawn weights[b, i] times
        weights = np.stack(
            [np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(size)]
        ).astype(np.float64)
        frauds = weights @ labels
        both = (frauds > 0) & (frauds < weights.sum(axis=1))  # one class only: no AP, no recall
        weights = weights[both]
        if not len(weights):
            continue
        old_ap, new_ap = (r.average_precision(weights) for r in ranked)
        old_rec, new_rec = (r.recall_at_fpr(weights, rule.fpr) for r in ranked)
        old_alert, new_alert = (weights @ a / weights.sum(axis=1) for a in alerts)
        with np.errstate(invalid="ignore", divide="ignore"):
            old_prec, new_prec = ((weights @ (a * labels)) / (weights @ a) for a in alerts)
        draws["average_precision"].append(new_ap - old_ap)
        draws["recall_at_fpr"].append(new_rec - old_rec)
        draws["alert_rate"].append(new_alert - old_alert)
        draws["precision_at_threshold"].append(new_prec - old_prec)
    intervals = {
        name: _interval(
            np.concatenate(values) if values else np.array([]),
            getattr(new, name) - getattr(old, name),
            rule.confidence,
        )
        for name, values in draws.items()
    }
    intervals["precision_at_k"] = _daily_interval(frame, old_scores, new_scores, rule, rng)
    return old, new, intervals


def _daily_interval(
    frame: pd.DataFrame,
    old_scores: np.ndarray,
    new_scores: np.ndarray,
    rule: OnlineRule,
    rng: np.random.Generator,
) -> Interval:
    """Card Precision@k's paired difference, days resampled (a day is its unit)."""
    daily = (
        daily_precision_at_k(frame, new_scores, rule.k, _ROLES)
        - daily_precision_at_k(frame, old_scores, rule.k, _ROLES)
    ).to_numpy()
    means = daily[rng.integers(0, len(daily), (rule.resamples, len(daily)))].mean(axis=1)
    return _interval(means, float(daily.mean()), rule.confidence)


def judge(
    frame: pd.DataFrame,
    thresholds: tuple[float, float],
    rule: OnlineRule,
    stage_days: float,
) -> OnlineDecision:
    """The online gate's decision on the paired, labelled events of a stage.

    Args:
        frame: see :func:`paired_differences` (may be empty, or hold one class).
        thresholds: (champion's, challenger's) decision thresholds.
        stage_days: how long the challenger has been in its stage, days.

    Returns:
        The verdict with its reasons and figures (none when it waits on too few frauds).
    """
    frauds = int(frame[LABEL].sum()) if len(frame) else 0
    days = int(frame[TIME].dt.floor("D").nunique()) if len(frame) else 0
    expired = stage_days >= rule.max_days
    if frauds < rule.min_frauds or frauds == len(frame):
        verdict, why = (REJECT, "inconclusive") if expired else (WAIT, "waiting for labels")
        reason = (
            f"{why}: {frauds} labelled frauds scored by both models, "
            f"{rule.min_frauds} needed (stage {stage_days:.1f} of {rule.max_days} days)"
        )
        return OnlineDecision(verdict, [reason], len(frame), frauds, days, stage_days, rule)
    old, new, diffs = paired_differences(frame, thresholds, rule)
    checks = [
        ("average precision", diffs["average_precision"], rule.ap_tolerance),
        ("recall at operating FPR", diffs["recall_at_fpr"], rule.recall_tolerance),
    ]
    level = f"{rule.confidence:.0%}"
    reasons = [
        f"{name} challenger − champion {interval.text()} ({level} paired bootstrap), "
        f"tolerance {tolerance:.4f}"
        for name, interval, tolerance in checks
    ]
    if any(interval.high < -tolerance for _, interval, tolerance in checks):
        verdict = REJECT
        reasons.append("worse than the champion beyond tolerance")
    elif all(interval.low >= -tolerance for _, interval, tolerance in checks):
        verdict = PROMOTE
        reasons.append("not worse than the champion beyond tolerance")
    elif expired:
        verdict = REJECT
        reasons.append(f"inconclusive after {stage_days:.1f} days (limit {rule.max_days})")
    else:
        verdict = WAIT
        reasons.append("intervals overlap the tolerance: more labels needed")
    return OnlineDecision(
        verdict, reasons, len(frame), frauds, days, stage_days, rule, old, new, diffs
    )
