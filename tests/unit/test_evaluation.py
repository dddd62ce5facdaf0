import numpy as np
import pandas as pd
import pytest

from fraudops.data import contract as c
from fraudops.model.evaluation import (
    EvaluationError,
    card_precision_at_k,
    evaluate,
    recall_at_fpr,
    threshold_for_alert_rate,
)
from fraudops.offline.reference import card_precision_top_k

pytestmark = pytest.mark.unit


def test_recall_at_fpr_takes_best_recall_within_the_false_positive_budget():
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.3, 0.1, 0.85, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2])
    assert recall_at_fpr(labels, scores, fpr=0.0) == pytest.approx(0.25)
    assert recall_at_fpr(labels, scores, fpr=0.1) == pytest.approx(0.75)  # one FP: 0.85


def test_threshold_keeps_alerts_within_the_budget_even_with_ties():
    scores = np.array([0.9, 0.8, 0.8, 0.1, 0.05, 0.0, 0.0, 0.0, 0.0, 0.0])
    assert (scores >= threshold_for_alert_rate(scores, 0.1)).sum() == 1
    assert (scores >= threshold_for_alert_rate(scores, 0.2)).sum() == 1  # tie at 0.8
    assert (scores >= threshold_for_alert_rate(scores, 0.3)).sum() == 3
    assert (scores >= threshold_for_alert_rate(scores, 0.05)).sum() == 0


def _scored(seed: int, days: int = 5, n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            c.TX_DATETIME: pd.Timestamp("2018-09-01")
            + pd.to_timedelta(rng.integers(0, days * 86_400, n), unit="s"),
            c.CUSTOMER_ID: rng.integers(0, 400, n),
            c.LABEL: (rng.random(n) < 0.05).astype(int),
        }
    )
    frame["score"] = np.clip(frame[c.LABEL] * 0.3 + rng.random(n), 0, 1)
    return frame


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_card_precision_equals_the_handbook_implementation(seed):
    frame = _scored(seed)
    ours = card_precision_at_k(frame, frame["score"].to_numpy(), k=20)
    reference = card_precision_top_k(frame.assign(day=frame[c.TX_DATETIME].dt.floor("D")), k=20)
    assert ours == pytest.approx(reference)


def test_card_precision_does_not_count_a_card_detected_on_an_earlier_day_again():
    frame = pd.DataFrame(
        {
            c.TX_DATETIME: pd.to_datetime(["2018-09-01 10:00", "2018-09-02 10:00"]),
            c.CUSTOMER_ID: [7, 7],
            c.LABEL: [1, 1],
        }
    )
    assert card_precision_at_k(frame, np.array([0.9, 0.9]), k=1) == pytest.approx(0.5)


def test_evaluate_refuses_a_holdout_with_one_class():
    frame = _scored(0).assign(**{c.LABEL: 0})
    with pytest.raises(EvaluationError, match="only class 0"):
        evaluate(frame, frame["score"].to_numpy())


def test_evaluate_gives_metrics_in_range():
    frame = _scored(3)
    m = evaluate(frame, frame["score"].to_numpy(), k=10, fpr=0.01, alert_rate=0.05)
    for value in (m.average_precision, m.roc_auc, m.card_precision_at_k, m.recall_at_fpr):
        assert 0 <= value <= 1
    assert m.roc_auc > 0.6  # the scores carry signal
    assert m.n_rows == 3000 and m.n_frauds == frame[c.LABEL].sum()
