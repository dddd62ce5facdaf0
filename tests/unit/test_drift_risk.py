"""The risk rule: calibrated thresholds equal to the report's own distances, importance weights,
prediction drift always counted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraudops.data import contract as c
from fraudops.drift.report import HANDBOOK_COLUMNS, SCORE, drift_frame, run_drift
from fraudops.drift.risk import (
    Calibration,
    assess,
    cached_calibration,
    calibrate,
    column_distance,
    importance_weights,
)
from fraudops.offline.handbook import compute_features

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def frames(small_history):
    features = compute_features(small_history)
    frame = features.assign(
        **{
            SCORE: np.random.default_rng(0).random(len(features)),
            c.TX_DATETIME: small_history[c.TX_DATETIME],
        }
    )
    days = small_history[c.TX_DATETIME]
    return frame[(days >= "2018-05-01") & (days < "2018-05-29")], frame[days >= "2018-06-01"]


def test_the_calibrating_distance_is_the_reports_own(frames):
    reference, current = frames
    reference = reference.drop(columns=[c.TX_DATETIME]).head(len(current))  # no sampling
    _, figures = run_drift(reference, current, threshold=0.5)
    ours, theirs = drift_frame(reference, HANDBOOK_COLUMNS), drift_frame(current, HANDBOOK_COLUMNS)
    for column, method in figures.column_methods.items():
        numerical = column in HANDBOOK_COLUMNS.numerical
        distance = column_distance(ours[column], theirs[column], method, numerical)
        assert distance == pytest.approx(figures.column_scores[column], rel=1e-9), column


def test_a_column_that_moves_between_clean_weeks_gets_a_higher_threshold(frames):
    reference, _ = frames
    methods = dict.fromkeys(HANDBOOK_COLUMNS.monitored, "Wasserstein distance (normed)")
    methods[c.TX_DURING_WEEKEND] = "Jensen-Shannon distance"
    calibration = calibrate(reference, HANDBOOK_COLUMNS, methods, 7, base=0.1, margin=1.5)
    assert calibration.windows == 4  # 28 days
    growing = c.terminal_count_feature(30)  # the warm-up still fills the 30-day counts in May
    assert calibration.noise[growing] > calibration.noise[c.TX_AMOUNT]
    assert calibration.thresholds[growing] == pytest.approx(1.5 * calibration.noise[growing])
    assert min(calibration.thresholds.values()) >= 0.1


def test_fewer_than_two_full_windows_keep_the_base_threshold(frames):
    reference, _ = frames
    short = reference[reference[c.TX_DATETIME] < "2018-05-10"]
    methods = dict.fromkeys(HANDBOOK_COLUMNS.monitored, "Wasserstein distance (normed)")
    calibration = calibrate(short, HANDBOOK_COLUMNS, methods, 7)
    assert calibration.windows == 0 and set(calibration.thresholds.values()) == {0.1}


def test_one_strong_shift_of_an_important_feature_drifts_and_a_chronic_column_does_not():
    features = ("A", "B", "C", "D")
    weights = importance_weights(features, {"A": 0.6, "B": 0.2, "C": 0.2, "D": -0.1})
    assert weights["D"] == 0.0 and sum(weights.values()) == pytest.approx(1.0)
    methods = dict.fromkeys([*features, SCORE], "Wasserstein distance (normed)")
    calibration = Calibration({"A": 0.1, "B": 0.1, "C": 0.1, "D": 0.3, SCORE: 0.1}, {}, 4)
    strong = {"A": 0.5, "B": 0.0, "C": 0.0, "D": 0.0, SCORE: 0.05}
    chronic = {"A": 0.0, "B": 0.0, "C": 0.0, "D": 0.25, SCORE: 0.05}
    assert assess(strong, methods, [], calibration, weights, 0.25).drifted
    quiet = assess(chronic, methods, [], calibration, weights, 0.25)
    assert not quiet.drifted and quiet.drifted_features == []
    minor = {"A": 0.0, "B": 0.2, "C": 0.0, "D": 0.0, SCORE: 0.05}
    assert not assess(minor, methods, [], calibration, weights, 0.25).drifted  # 0.2 < 0.25
    scored = assess({**minor, SCORE: 0.3}, methods, [], calibration, weights, 0.25)
    assert scored.drifted and scored.prediction_drift  # the score always counts


def test_a_p_value_column_keeps_evidentlys_verdict_and_equal_weights_without_importance():
    weights = importance_weights(("A", "B"), {})
    assert weights == {"A": 0.5, "B": 0.5}
    methods = {"A": "K-S p_value", "B": "Wasserstein distance (normed)", SCORE: "K-S p_value"}
    calibration = Calibration({"A": 0.1, "B": 0.1, SCORE: 0.1}, {}, 0)
    figures = assess({"A": 0.001, "B": 0.0, SCORE: 0.9}, methods, ["A"], calibration, weights, 0.5)
    assert figures.drifted and figures.drifted_features == ["A"]


def test_a_calibration_is_computed_once_per_champion(tmp_path):
    made = []

    def make():
        made.append(1)
        return Calibration({"A": 0.2}, {"A": 0.13}, 3, {"A": "Jensen-Shannon distance"})

    first = cached_calibration(tmp_path, "4", make)
    again = cached_calibration(tmp_path, "4", make)
    assert first == again and made == [1]
    pd.testing.assert_series_equal(pd.Series(first.thresholds), pd.Series({"A": 0.2}))


def test_a_partial_week_is_compared_with_the_same_weekdays_of_the_reference(frames):
    from fraudops.drift.report import like_weekdays

    reference, current = frames
    days = current[c.TX_DATETIME].dt.dayofweek
    weekend = current[days >= 5]  # a window of Saturday and Sunday only
    matched = like_weekdays(reference, weekend, c.TX_DATETIME, len(weekend))
    assert set(matched[c.TX_DATETIME].dt.dayofweek) == {5, 6}
    assert len(matched) == min(len(weekend), len(matched))
    _, like = run_drift(reference, weekend, threshold=0.5)
    assert c.TX_DURING_WEEKEND not in like.drifted_columns
    whole_weeks = reference.drop(columns=[c.TX_DATETIME])  # no time: no matching possible
    _, unlike = run_drift(whole_weeks, weekend, threshold=0.5)
    assert c.TX_DURING_WEEKEND in unlike.drifted_columns


def test_the_score_is_compared_with_out_of_sample_scores_when_the_champion_has_them(frames):
    from fraudops.drift.report import holdout_scores

    reference, current = frames
    inflated = reference.assign(**{SCORE: reference[SCORE] ** 4})  # as in-sample scores sit low
    _, in_sample = run_drift(inflated, current, threshold=0.5)
    assert SCORE in in_sample.drifted_columns
    held = holdout_scores(current[c.TX_DATETIME], current[SCORE].to_numpy(), max_rows=5_000)
    assert len(held) == 5_000 and list(held.columns) == [c.TX_DATETIME, SCORE]
    _, out_of_sample = run_drift(inflated, current, threshold=0.5, score_reference=held)
    assert SCORE not in out_of_sample.drifted_columns
    assert out_of_sample.column_scores[SCORE] < 0.1 < in_sample.column_scores[SCORE]
    others = [col for col in HANDBOOK_COLUMNS.features]
    assert {k: in_sample.column_scores[k] for k in others} == {
        k: out_of_sample.column_scores[k] for k in others
    }


def test_the_scores_noise_is_measured_on_the_holdout_scores(frames):
    from fraudops.drift.report import holdout_scores

    reference, current = frames
    methods = dict.fromkeys(HANDBOOK_COLUMNS.monitored, "Wasserstein distance (normed)")
    week = current[current[c.TX_DATETIME] < "2018-06-08"]
    shifted = np.where(week[c.TX_DATETIME] < "2018-06-04", 0.0, 0.5) + week[SCORE] / 2
    held = holdout_scores(week[c.TX_DATETIME], shifted.to_numpy())
    plain = calibrate(reference, HANDBOOK_COLUMNS, methods, 7)
    calibrated = calibrate(reference, HANDBOOK_COLUMNS, methods, 7, score_reference=held)
    # three days of scores in [0, .5], four in [.5, 1]: windows of 3 days, far from the rest
    assert calibrated.noise[SCORE] > 1.0 > plain.noise[SCORE]
    assert calibrated.noise[c.TX_AMOUNT] == plain.noise[c.TX_AMOUNT]
    one_day = held[held[c.TX_DATETIME] < "2018-06-02"]
    assert (
        calibrate(reference, HANDBOOK_COLUMNS, methods, 7, score_reference=one_day).noise[SCORE]
        == 0.0
    )


def test_a_partial_window_is_never_judged_drifted():
    weights = importance_weights(("A",), {"A": 1.0})
    methods = {"A": "Wasserstein distance (normed)", SCORE: "Wasserstein distance (normed)"}
    calibration = Calibration({"A": 0.1, SCORE: 0.1}, {}, 4)
    shifted = {"A": 0.9, SCORE: 0.9}
    assert assess(shifted, methods, [], calibration, weights, 0.25).drifted
    partial = assess(shifted, methods, [], calibration, weights, 0.25, full_window=False)
    assert not partial.drifted and partial.risk == 1.0 and partial.prediction_drift
