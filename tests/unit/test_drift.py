import numpy as np
import pandas as pd
import pytest

from fraudops import contract as c
from fraudops.drift import MONITORED, SCORE, DriftInputError, run_drift, sample_by_day
from fraudops.features import compute_features

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def windows(small_history):
    features = compute_features(small_history)
    frame = features.assign(
        **{
            SCORE: np.random.default_rng(0).random(len(features)),
            c.TX_DATETIME: small_history[c.TX_DATETIME],
        }
    )
    days = small_history[c.TX_DATETIME]
    reference = frame[(days >= "2018-05-01") & (days < "2018-05-29")]
    current = frame[days >= "2018-06-01"]
    return reference, current


def test_same_process_gives_a_clean_window(windows):
    reference, current = windows
    _, figures = run_drift(reference, current, threshold=0.5)
    assert figures.drift_share < 0.3
    assert set(figures.column_scores) == set(MONITORED)


def test_shifted_amounts_drift_the_amount_columns(windows):
    reference, current = windows
    shifted = current.copy()
    for column in [c.TX_AMOUNT, *(c.customer_mean_amount_feature(w) for w in c.WINDOWS_DAYS)]:
        shifted[column] = shifted[column] * 3
    _, figures = run_drift(reference, shifted, threshold=0.5)
    assert {c.TX_AMOUNT, c.customer_mean_amount_feature(30)} <= set(figures.drifted_columns)


def test_missing_columns_and_empty_windows_are_named(windows):
    reference, current = windows
    with pytest.raises(DriftInputError, match=r"current window lacks column.*TX_AMOUNT"):
        run_drift(reference, current.drop(columns=[c.TX_AMOUNT]), threshold=0.5)
    with pytest.raises(DriftInputError, match="reference window has no rows"):
        run_drift(reference.iloc[0:0], current, threshold=0.5)


def test_day_stratified_sample_keeps_every_day_share():
    frame = pd.DataFrame({"t": pd.date_range("2018-06-01", periods=10_000, freq="min")})
    sample = sample_by_day(frame, "t", 1_000)
    per_day = sample["t"].dt.date.value_counts(normalize=True).sort_index()
    full = frame["t"].dt.date.value_counts(normalize=True).sort_index()
    assert abs(len(sample) - 1_000) <= 10
    np.testing.assert_allclose(per_day.to_numpy(), full.to_numpy(), atol=0.01)


def test_reference_is_a_bounded_day_sample_scored_by_the_model(small_history):
    from fraudops.drift import reference_sample

    features = compute_features(small_history)
    scored_rows = []

    def score(frame):
        scored_rows.append(len(frame))
        assert list(frame.columns) == list(c.FEATURES)
        return np.full(len(frame), 0.25)

    reference = reference_sample(features, small_history[c.TX_DATETIME], score, max_rows=3_000)
    assert abs(len(reference) - 3_000) <= 100 and scored_rows == [len(reference)]
    assert set(MONITORED) | {c.TX_DATETIME} <= set(reference.columns)
    assert (reference[SCORE] == 0.25).all()
