"""CBPE: the estimate of an unlabelled window tracks its realized figures under covariate shift
and says nothing on too few labels."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from fraudops.drift.estimate import estimate, expected_average_precision

pytestmark = pytest.mark.unit


def window(n: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Covariate shift: the inputs move by ``shift``, the fraud probability of an input does
    not; the score is an uncalibrated but monotone function of that probability."""
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, n)
    risk = 1 / (1 + np.exp(-(-6 + 1.8 * x)))
    labels = (rng.random(n) < risk).astype(int)
    return np.sqrt(risk), labels


@pytest.mark.parametrize("shift", [0.0, 0.5, -0.5])
def test_the_estimate_tracks_the_realized_figures_under_covariate_shift(shift):
    old_scores, old_labels = window(200_000, 0.0, 1)
    scores, labels = window(200_000, shift, 2)
    guess = estimate(old_scores, old_labels, scores, threshold=0.2)
    realized_ap = average_precision_score(labels, scores)
    alerts = scores >= 0.2
    assert guess.average_precision == pytest.approx(realized_ap, abs=0.03)
    assert guess.recall_at_threshold == pytest.approx(labels[alerts].sum() / labels.sum(), abs=0.03)
    assert guess.precision_at_threshold == pytest.approx(labels[alerts].mean(), abs=0.03)
    assert guess.fraud_rate == pytest.approx(labels.mean(), rel=0.15)


def test_expected_ap_of_certain_labels_is_the_ap():
    rng = np.random.default_rng(3)
    labels = (rng.random(5_000) < 0.1).astype(float)
    scores = rng.random(5_000) + labels * 0.3
    assert expected_average_precision(labels, scores) == pytest.approx(
        average_precision_score(labels, scores), abs=1e-12
    )


def test_too_few_labelled_rows_or_frauds_give_no_estimate():
    scores, labels = window(900, 1.0, 4)
    assert labels.sum() >= 10 and estimate(scores, labels, scores, 0.2) is None
    scores, labels = window(5_000, -3.0, 4)
    assert labels.sum() < 10 and estimate(scores, labels, scores, 0.2) is None
