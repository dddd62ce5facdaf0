"""The model report of one registered version: a self-contained HTML page people read.

Built by :func:`model_report` from the holdout both models were scored on (the challenger and,
when there is one, the champion): ROC and precision-recall curves with AUC and average
precision, the confusion matrix at the decision threshold and at the daily alert budget,
calibration (reliability curve and Brier score), Precision@k by day, global feature importance
(mean absolute contribution, :mod:`fraudops.model.explain`), the slices' figures with their
intervals (:mod:`fraudops.model.slices`), the gate's decision and the data card. The charts are
plotly figures; plotly.js is inlined once, so the file opens offline. Nothing in it is an id:
only counts, rates, curves and feature names.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, precision_recall_curve, roc_curve

from fraudops.model.evaluation import Metrics, daily_precision_at_k
from fraudops.model.slices import SegmentFigures
from fraudops.spec.model import Roles

#: Points kept per curve (the curves of a 60,000-row holdout have tens of thousands).
CURVE_POINTS = 400


@dataclass(frozen=True)
class ModelOnHoldout:
    """One model's scores on the report's holdout.

    Attributes:
        label: how the report names it ("challenger v4", "champion v3").
        scores: n fraud scores in [0, 1], aligned with the holdout.
        metrics: its holdout metrics (its threshold is the decision threshold).
        slices: its per-segment figures.
    """

    label: str
    scores: np.ndarray
    metrics: Metrics
    slices: list[SegmentFigures] = field(default_factory=list)


@dataclass(frozen=True)
class ModelReport:
    """A built report: ``html`` (the page) and ``figures`` (chart name → plotly JSON: roc,
    precision_recall, calibration, precision_at_k_by_day, feature_importance when known)."""

    html: str
    figures: dict[str, str]


@dataclass(frozen=True)
class ReportContext:
    """What the report says about the version besides the curves.

    Attributes:
        title: the page's title (model name and version).
        card: the data card and model card, name → text, shown as a table.
        decision: the gate's verdict and its reasons.
        importance: feature → mean absolute contribution (log-odds), or empty with
            ``importance_note`` saying why.
        k: Precision@k's k (cards or events per day).
        audit: the model's audit log before this run's decision, oldest first (each event's
            fields by name: at, action, version, previous, actor, reason).
    """

    title: str
    card: Mapping[str, str]
    decision: Sequence[str]
    importance: Mapping[str, float]
    importance_note: str = ""
    k: int = 100
    audit: Sequence[Mapping[str, object]] = ()


def _thin(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(x) <= CURVE_POINTS:
        return x, y
    keep = np.unique(np.linspace(0, len(x) - 1, CURVE_POINTS).astype(int))
    return x[keep], y[keep]


def _figure(
    store: dict[str, str], key: str, fig: go.Figure, title: str, x: str, y: str, width: int = 560
) -> str:
    """The figure's HTML fragment; its plotly JSON goes to ``store[key]``."""
    fig.update_layout(
        title=title,
        xaxis_title=x,
        yaxis_title=y,
        width=width,
        height=fig.layout.height or 380,
        margin={"l": fig.layout.margin.l or 60, "r": 20, "t": 50, "b": 100},
        legend={"orientation": "h", "y": -0.25},
        template="plotly_white",
    )
    store[key] = str(fig.to_json())
    return str(fig.to_html(full_html=False, include_plotlyjs=False))


def _curves(
    store: dict[str, str], labels: np.ndarray, models: Sequence[ModelOnHoldout]
) -> list[str]:
    roc, pr, calibration = go.Figure(), go.Figure(), go.Figure()
    top = 0.0  # the calibration plot's range: scores of a rare class stay far below 1
    for model in models:
        fpr, tpr, _ = roc_curve(labels, model.scores)
        roc.add_scatter(
            x=_thin(fpr, tpr)[0],
            y=_thin(fpr, tpr)[1],
            name=f"{model.label} (AUC {model.metrics.roc_auc:.3f})",
        )
        precision, recall, _ = precision_recall_curve(labels, model.scores)
        pr.add_scatter(
            x=_thin(recall, precision)[0],
            y=_thin(recall, precision)[1],
            name=f"{model.label} (AP {model.metrics.average_precision:.3f})",
        )
        observed, predicted = calibration_curve(
            labels, model.scores, n_bins=10, strategy="quantile"
        )
        brier = brier_score_loss(labels, model.scores)
        top = max(top, float(predicted.max()), float(observed.max()))
        calibration.add_scatter(
            x=predicted, y=observed, mode="lines+markers", name=f"{model.label} (Brier {brier:.4f})"
        )
    roc.add_scatter(x=[0, 1], y=[0, 1], name="chance", line={"dash": "dot", "color": "grey"})
    base = float(np.mean(labels))
    pr.add_scatter(x=[0, 1], y=[base, base], name=f"base rate {base:.4f}", line={"dash": "dot"})
    top = min(1.0, top * 1.05) or 1.0
    calibration.add_scatter(x=[0, top], y=[0, top], name="perfect", line={"dash": "dot"})
    return [
        _figure(store, "roc", roc, "ROC curve", "false-positive rate", "recall"),
        _figure(store, "precision_recall", pr, "Precision-recall curve", "recall", "precision"),
        _figure(
            store,
            "calibration",
            calibration,
            "Calibration (10 quantile bins)",
            "mean score",
            "fraud share",
        ),
    ]


def _daily(
    store: dict[str, str],
    holdout: pd.DataFrame,
    roles: Roles,
    models: Sequence[ModelOnHoldout],
    k: int,
) -> str:
    fig = go.Figure()
    for model in models:
        daily = daily_precision_at_k(holdout, model.scores, k, roles)
        fig.add_scatter(x=daily.index, y=daily.to_numpy(), mode="lines+markers", name=model.label)
    what = "cards" if roles.entity else "events"
    title = f"Precision@{k} by day ({what})"
    return _figure(store, "precision_at_k_by_day", fig, title, "day", f"precision@{k}")


def _table(header: Sequence[str], rows: Sequence[Sequence[object]], css: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _matrix(labels: np.ndarray, alerts: np.ndarray, caption: str) -> str:
    fraud = labels.astype(bool)
    cells = [
        ["fraud", int((fraud & alerts).sum()), int((fraud & ~alerts).sum())],
        ["genuine", int((~fraud & alerts).sum()), int((~fraud & ~alerts).sum())],
    ]
    table = _table(["actual \\ decision", "alert", "pass"], cells, "matrix")
    return f"<figure>{table}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _budget_alerts(holdout: pd.DataFrame, roles: Roles, scores: np.ndarray, k: int) -> np.ndarray:
    """The k highest-scored events of each day (the analysts' daily budget)."""
    day = holdout[roles.time].dt.floor("D").to_numpy()
    order = pd.DataFrame({"day": day, "score": scores}).groupby("day")["score"]
    return (order.rank(method="first", ascending=False) <= k).to_numpy()


def _slices_table(models: Sequence[ModelOnHoldout], failed: Sequence[str]) -> str:
    if not models[0].slices:
        return "<p>The spec declares no slices.</p>"
    others = {(f.slice, f.segment): f for f in models[1].slices} if len(models) > 1 else {}

    def rate(value: float, low: float, high: float) -> str:
        return "–" if np.isnan(value) else f"{value:.3f} [{low:.3f}, {high:.3f}]"

    rows = []
    for ours in models[0].slices:
        theirs = others.get((ours.slice, ours.segment))
        where = f"slice {ours.slice}={ours.segment!r}"
        rows.append(
            [
                ours.slice,
                ours.segment,
                f"{ours.rows:,}",
                f"{ours.frauds:,}",
                rate(ours.recall, ours.recall_low, ours.recall_high),
                rate(theirs.recall, theirs.recall_low, theirs.recall_high) if theirs else "",
                rate(ours.fpr, ours.fpr_low, ours.fpr_high),
                rate(theirs.fpr, theirs.fpr_low, theirs.fpr_high) if theirs else "",
                "failed" if any(f.startswith(where + ":") for f in failed) else "",
            ]
        )
    names = [m.label for m in models]
    header = ["slice", "segment", "rows", "frauds", f"recall, {names[0]}"]
    header += [f"recall, {names[1]}"] if len(names) > 1 else ["recall, champion"]
    header += [f"FPR, {names[0]}", f"FPR, {names[1]}" if len(names) > 1 else "FPR, champion"]
    return _table([*header, "slice gate"], rows, "slices")


def _importance(store: dict[str, str], context: ReportContext) -> str:
    if not context.importance:
        return f"<p>{html.escape(context.importance_note)}</p>"
    top = sorted(context.importance.items(), key=lambda kv: kv[1])[-15:]
    fig = go.Figure(go.Bar(x=[v for _, v in top], y=[k for k, _ in top], orientation="h"))
    fig.update_layout(height=120 + 24 * len(top), margin={"l": 320})
    return _figure(
        store,
        "feature_importance",
        fig,
        "Global feature importance",
        "mean |contribution| (log-odds)",
        "",
        width=1100,
    )


_STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;max-width:1200px;color:#1f2933}
h1{font-size:1.5em} h2{font-size:1.15em;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right} th{background:#f3f4f6}
td:first-child,th:first-child{text-align:left} table.card td{text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:16px}
.grid>div{flex:0 0 580px} figure{display:inline-block;margin:0 24px 0 0}
.decision{padding:8px 12px;background:#f3f4f6;border-left:4px solid #2563eb}
"""


def model_report(
    holdout: pd.DataFrame,
    roles: Roles,
    models: Sequence[ModelOnHoldout],
    context: ReportContext,
    slice_failures: Sequence[str] = (),
) -> ModelReport:
    """The report: one HTML page (UTF-8 text, plotly.js inlined: about 4.7 MB) and its charts.

    Args:
        holdout: the n holdout events (time, label and ranked entity columns of ``roles``).
        roles: the spec's roles.
        models: the challenger first, then the champion when there is one (same n rows).
        context: the title, cards, decision and feature importance.
        slice_failures: the slice gate's failures (their segments are flagged).

    Raises:
        ValueError: no model, or scores not aligned with the holdout.
    """
    if not models or any(len(m.scores) != len(holdout) for m in models):
        raise ValueError("the report needs one to two models scored on every holdout row")
    labels = holdout[roles.label].to_numpy().astype(int)
    store: dict[str, str] = {}
    roc, pr, calibration = _curves(store, labels, models)
    matrices = "".join(
        _matrix(
            labels,
            model.scores >= model.metrics.threshold,
            f"{model.label}: decision threshold {model.metrics.threshold:.4f}",
        )
        + _matrix(
            labels,
            _budget_alerts(holdout, roles, model.scores, context.k),
            f"{model.label}: daily budget, top {context.k} events a day",
        )
        for model in models
    )
    metrics = _table(
        ["metric", *(m.label for m in models)],
        [
            [name, *(f"{getattr(m.metrics, name):.4f}" for m in models)]
            for name in (
                "average_precision",
                "roc_auc",
                "recall_at_fpr",
                "card_precision_at_k",
                "precision_at_threshold",
                "recall_at_threshold",
                "threshold",
            )
        ],
    )
    decision = "".join(f"<li>{html.escape(r)}</li>" for r in context.decision)
    card = _table(["field", "value"], [[k, v] for k, v in context.card.items()], "card")
    fields = ("at", "action", "version", "previous", "actor", "reason")
    audit = (
        _table(fields, [[e.get(f) or "" for f in fields] for e in context.audit], "audit")
        if context.audit
        else "<p>No promotion, rollback or refusal recorded before this run.</p>"
    )
    title = html.escape(context.title)
    daily = _daily(store, holdout, roles, models, context.k)
    importance = _importance(store, context)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{_STYLE}</style><script>{get_plotlyjs()}</script></head>
<body>
<h1>{title}</h1>
<div class="decision"><strong>Gate</strong><ul>{decision}</ul></div>
<h2>Holdout metrics ({len(labels):,} events, {int(labels.sum()):,} frauds)</h2>{metrics}
<h2>Curves</h2><div class="grid"><div>{roc}</div><div>{pr}</div></div>
<h2>Confusion matrices</h2>{matrices}
<h2>Calibration and Precision@k</h2>
<div class="grid"><div>{calibration}</div><div>{daily}</div></div>
<h2>Feature importance</h2>{importance}
<h2>Slices (90 % bootstrap intervals)</h2>{_slices_table(models, slice_failures)}
<h2>Data and model card</h2>{card}
<h2>Audit log (before this run's decision)</h2>{audit}
</body></html>
"""
    return ModelReport(page, store)


def mean_abs_contributions(contributions: np.ndarray, features: Sequence[str]) -> dict[str, float]:
    """Global importance: each feature's mean absolute contribution over rows (n × m)."""
    means = np.abs(np.asarray(contributions)).mean(axis=0)
    return {f: float(v) for f, v in zip(features, means, strict=True)}
