"""The model report page: its sections, its escaping, its refusal of misaligned scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraudops.model.evaluation import evaluate
from fraudops.model.report import ModelOnHoldout, ReportContext, model_report
from fraudops.model.slices import slice_figures
from fraudops.spec import load_spec

pytestmark = pytest.mark.unit

SPEC = load_spec("handbook")
ROLES = SPEC.roles()


def _holdout(n: int = 3000) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "TRANSACTION_ID": np.arange(n),
            "TX_DATETIME": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.random(n) * 7, "D"),
            "CUSTOMER_ID": rng.integers(0, 300, n),
            "TX_FRAUD": (rng.random(n) < 0.05).astype(int),
        }
    ).sort_values("TX_DATETIME", ignore_index=True)
    scores = np.clip(frame["TX_FRAUD"] * 0.4 + rng.random(n) * 0.6, 0, 1).to_numpy()
    return frame, scores


def _model(frame: pd.DataFrame, scores: np.ndarray, label: str) -> ModelOnHoldout:
    metrics = evaluate(frame, scores, k=20, roles=ROLES)
    segments = pd.DataFrame({"band": np.where(scores > 0.5, "high", "low")})
    figures = slice_figures(segments, frame["TX_FRAUD"].to_numpy(), scores >= metrics.threshold)
    return ModelOnHoldout(label, scores, metrics, figures)


CONTEXT = ReportContext(
    title="Model report: fraud-detector v2",
    card={"dataset spec": "<script>alert('x')</script>"},
    decision=["promote", "average precision 0.9 vs champion 0.8"],
    importance={"TX_AMOUNT": 0.4, "CUSTOMER_ID_NB_TX_1DAY_WINDOW": 0.1},
    k=20,
)


def test_a_report_holds_every_section_for_both_models_and_escapes_card_text():
    frame, scores = _holdout()
    models = [_model(frame, scores, "v2"), _model(frame, scores[::-1].copy(), "champion v1")]
    report = model_report(frame, ROLES, models, CONTEXT, ["slice band='high': recall ..."])
    page = report.html
    assert set(report.figures) == {
        "roc",
        "precision_recall",
        "calibration",
        "precision_at_k_by_day",
        "feature_importance",
    }
    assert '"name":"champion v1 (AUC' in report.figures["roc"]
    for section in (
        "ROC curve",
        "Precision-recall curve",
        "Confusion matrices",
        "Calibration",
        "Precision@20 by day (cards)",
        "Global feature importance",
        "Slices (90 % bootstrap intervals)",
    ):
        assert section in page, section
    assert page.count('<table class="matrix">') == 4
    assert "recall, champion v1" in page and "<td>failed</td>" in page
    assert "<script>alert('x')</script>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page


def test_a_first_model_report_has_its_own_matrices_and_a_note_without_importance():
    frame, scores = _holdout()
    context = ReportContext("t", {}, ["promote"], {}, "No feature importance: reasons.", k=20)
    page = model_report(frame, ROLES, [_model(frame, scores, "v1")], context).html
    assert page.count('<table class="matrix">') == 2 and "No feature importance: reasons." in page


def test_scores_not_aligned_with_the_holdout_are_refused():
    frame, scores = _holdout()
    model = _model(frame, scores, "v1")
    short = ModelOnHoldout("v1", scores[:-1], model.metrics)
    with pytest.raises(ValueError, match="every holdout row"):
        model_report(frame, ROLES, [short], CONTEXT)


def test_the_report_shows_the_audit_log_before_the_run():
    frame, scores = _holdout()
    event = {
        "at": "2026-12-06T10:00:00+00:00",
        "action": "rollback",
        "version": "1",
        "previous": "2",
        "actor": "ops@host",
        "reason": "rollback from version 2",
    }
    context = ReportContext("t", {}, ["promote"], {}, "none", k=20, audit=[event])
    page = model_report(frame, ROLES, [_model(frame, scores, "v3")], context).html
    assert '<table class="audit">' in page and "<td>rollback from version 2</td>" in page
    empty = model_report(frame, ROLES, [_model(frame, scores, "v1")], CONTEXT).html
    assert "No promotion, rollback or refusal recorded before this run." in empty
