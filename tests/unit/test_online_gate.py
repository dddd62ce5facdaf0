"""The online gate on constructed paired streams: a better challenger is promoted, a worse one
rejected, too few labels wait."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraudops.model import online_gate as og

pytestmark = pytest.mark.unit

RULE = og.OnlineRule(resamples=200, k=20, min_frauds=30)


def stream(n: int, frauds: float, champion: float, challenger: float, seed: int = 1):
    """n events over 10 days; each model's score separates frauds by its ``signal``."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < frauds).astype(int)

    def scores(signal: float) -> np.ndarray:
        logits = -4 + signal * labels + rng.normal(0, 1, n)
        return 1 / (1 + np.exp(-logits))

    return pd.DataFrame(
        {
            og.CHAMPION_SCORE: scores(champion),
            og.CHALLENGER_SCORE: scores(challenger),
            og.LABEL: labels,
            og.TIME: pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.random(n) * 10, unit="D"),
            og.ENTITY: rng.integers(0, n // 3, n),
        }
    )


def test_a_clearly_better_challenger_is_promoted_with_positive_paired_intervals():
    decision = og.judge(stream(20_000, 0.01, 1.5, 3.5), (0.1, 0.1), RULE, stage_days=3)
    assert decision.verdict == og.PROMOTE
    assert decision.differences["average_precision"].low > 0
    assert decision.challenger.average_precision > decision.champion.average_precision


def test_a_clearly_worse_challenger_is_rejected():
    decision = og.judge(stream(20_000, 0.01, 3.5, 1.0), (0.1, 0.1), RULE, stage_days=3)
    assert decision.verdict == og.REJECT
    assert decision.differences["average_precision"].high < -RULE.ap_tolerance
    assert "worse" in decision.summary


def test_too_few_labelled_frauds_waits_then_rejects_as_inconclusive_after_the_limit():
    few = stream(1_000, 0.01, 1.5, 3.5)
    assert few[og.LABEL].sum() < RULE.min_frauds
    waiting = og.judge(few, (0.1, 0.1), RULE, stage_days=2)
    assert waiting.verdict == og.WAIT and waiting.differences == {}
    assert "labelled frauds" in waiting.reasons[0]
    late = og.judge(few, (0.1, 0.1), RULE, stage_days=RULE.max_days)
    assert late.verdict == og.REJECT and "inconclusive" in late.summary


def test_equal_models_on_small_evidence_wait_rather_than_decide():
    frame = stream(4_000, 0.012, 2.5, 2.5, seed=3)
    frame[og.CHALLENGER_SCORE] = (
        frame[og.CHAMPION_SCORE] * 0.5
        + 0.5 * np.random.default_rng(9).random(len(frame)) * frame[og.CHAMPION_SCORE]
    )
    decision = og.judge(frame, (0.1, 0.1), og.OnlineRule(resamples=200, ap_tolerance=0.0), 1)
    assert decision.verdict == og.WAIT


def test_the_same_evidence_gives_the_same_decision_and_intervals_contain_the_estimate():
    frame = stream(10_000, 0.01, 2.0, 2.5)
    first = og.judge(frame, (0.1, 0.1), RULE, stage_days=3)
    again = og.judge(frame, (0.1, 0.1), RULE, stage_days=3)
    assert first == again
    for name, interval in first.differences.items():
        assert interval.low <= interval.high, name
    alert = first.differences["alert_rate"]
    expected = (frame[og.CHALLENGER_SCORE] >= 0.1).mean() - (frame[og.CHAMPION_SCORE] >= 0.1).mean()
    assert alert.estimate == pytest.approx(expected)


def test_weighted_figures_equal_scikit_learn_on_the_resampled_rows_ties_included():
    from sklearn.metrics import average_precision_score

    from fraudops.model.evaluation import recall_at_fpr

    rng = np.random.default_rng(4)
    labels = (rng.random(3_000) < 0.05).astype(float)
    scores = np.round(rng.random(3_000) * 0.5 + 0.4 * labels, 2)  # many ties
    ranked = og._Ranked(scores, labels)
    rows = rng.integers(0, 3_000, 3_000)
    weights = np.stack([np.ones(3_000), np.bincount(rows, minlength=3_000)]).astype(float)
    ap = ranked.average_precision(weights)
    recall = ranked.recall_at_fpr(weights, 0.01)
    assert ap[0] == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
    assert ap[1] == pytest.approx(average_precision_score(labels[rows], scores[rows]), abs=1e-12)
    assert recall[0] == pytest.approx(recall_at_fpr(labels, scores, 0.01), abs=1e-12)
    assert recall[1] == pytest.approx(recall_at_fpr(labels[rows], scores[rows], 0.01), abs=1e-12)
