"""Slices: segments from the spec, per-segment recall and FPR with intervals, the slice gate."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from fraudops.model.evaluation import Metrics
from fraudops.model.gate import GateRule, decide
from fraudops.model.slices import (
    SegmentFigures,
    SliceRule,
    compare_slices,
    segments,
    slice_figures,
)
from fraudops.spec import load_spec, parse_spec, spec_sha256, spec_yaml

pytestmark = pytest.mark.unit

HANDBOOK = load_spec("handbook")
CARDS = load_spec("cards")


def test_segments_band_amounts_and_entity_ages_and_keep_categories():
    day = pd.Timedelta(days=1)
    start = pd.Timestamp("2024-01-01")
    events = pd.DataFrame(
        {
            "tx_time": [start, start + 3 * day, start + 10 * day, start + 40 * day, start],
            "card_token": ["a", "a", "a", "a", "b"],
            "amount": [5.0, 20.0, 150.0, 900.0, np.nan],
            "channel": ["pos", "ecom", "ecom", "atm", None],
        }
    )
    got = segments(events, CARDS)
    assert list(got.columns) == ["channel", "amount_band", "card_age"]
    assert got["channel"].tolist() == ["pos", "ecom", "ecom", "atm", "missing"]
    assert got["amount_band"].tolist() == ["< 20", "20 – 100", "100 – 500", "≥ 500", "missing"]
    assert got["card_age"].tolist() == ["< 7d", "< 7d", "7d – 30d", "≥ 30d", "< 7d"]


def test_slice_figures_count_recall_and_fpr_per_segment_with_intervals_around_them():
    frame = pd.DataFrame({"band": ["low"] * 1000 + ["high"] * 1000})
    labels = np.r_[np.r_[np.ones(100), np.zeros(900)], np.r_[np.ones(50), np.zeros(950)]]
    alerts = np.r_[
        np.r_[np.ones(80), np.zeros(20), np.ones(9), np.zeros(891)],  # low: recall .8, fpr .01
        np.r_[np.ones(10), np.zeros(40), np.zeros(950)],  # high: recall .2, fpr 0
    ]
    high, low = slice_figures(frame, labels, alerts.astype(bool), seed=1)
    assert (low.segment, low.rows, low.frauds, low.alerts) == ("low", 1000, 100, 89)
    assert low.recall == 0.8 and low.fpr == 0.01
    assert low.recall_low < 0.8 < low.recall_high and low.fpr_low < 0.01 < low.fpr_high
    assert low.recall_low > 0.7 and low.recall_high < 0.9  # n = 100: about ±0.065 at 90 %
    assert (high.recall, high.fpr) == (0.2, 0.0)
    assert slice_figures(frame, labels, alerts.astype(bool), seed=1)[1] == low  # same seed


def test_a_segment_without_frauds_has_no_recall():
    (figures,) = slice_figures(pd.DataFrame({"s": ["x"] * 10}), np.zeros(10), np.zeros(10))
    assert figures.frauds == 0 and math.isnan(figures.recall) and figures.fpr == 0.0


def _figures(slice_: str, segment: str, frauds: int, recall: float, fpr: float):
    return SegmentFigures(slice_, segment, 1000, frauds, 0, recall, 0, 1, fpr, 0, 1)


def test_the_slice_gate_names_the_segment_that_lost_recall_or_raised_false_positives():
    champion = [
        _figures("channel", "ecom", 80, 0.70, 0.010),
        _figures("channel", "pos", 80, 0.60, 0.010),
        _figures("channel", "atm", 5, 0.90, 0.010),
        _figures("amount_band", "< 20", 80, 0.50, 0.010),
    ]
    challenger = [
        _figures("channel", "ecom", 80, 0.55, 0.010),  # recall -0.15
        _figures("channel", "pos", 80, 0.62, 0.025),  # fpr +0.015
        _figures("channel", "atm", 5, 0.10, 0.010),  # too few frauds to judge
        _figures("amount_band", "< 20", 80, 0.10, 0.010),  # not gated
    ]
    failures, notes = compare_slices(challenger, champion, {"channel"}, SliceRule())
    assert failures == [
        "slice channel='ecom': recall 0.550 vs champion 0.700 (below tolerance 0.100)",
        "slice channel='pos': false-positive rate 0.0250 vs champion 0.0100 (above tolerance "
        "0.0100)",
    ]
    assert notes == ["slice channel='atm': 5 frauds, not judged (< 30)"]
    assert compare_slices(champion, champion, {"channel"}, SliceRule())[0] == []


METRICS = Metrics(0.5, 0.9, 0.3, 0.6, 0.2, 0.3, 0.6, 1000, 50)


def test_a_slice_failure_keeps_the_champion_and_a_clean_check_says_so():
    failed = decide(METRICS, METRICS, GateRule(), "1", (["slice channel='ecom': ..."], []))
    assert not failed.promote and "slice channel='ecom': ..." in failed.reasons
    passed = decide(METRICS, METRICS, GateRule(), "1", ([], ["a note"]))
    assert passed.promote
    assert passed.reasons[-2:] == [
        "no gated slice lost recall or raised false positives",
        "a note",
    ]


def test_slices_do_not_change_the_specs_hash():
    text = spec_yaml(HANDBOOK).replace("gate: false", "gate: true", 1)
    gated = parse_spec(text)
    assert gated.slices[0].gate and spec_sha256(gated) == spec_sha256(HANDBOOK)


@pytest.mark.parametrize(
    ("slice_", "message"),
    [
        ({"name": "x", "column": "nope", "bands": [1]}, "slices.0.column: 'nope'"),
        ({"name": "x", "column": "amount"}, "slices.0.bands: numeric column 'amount'"),
        ({"name": "x", "column": "channel", "bands": [1]}, "'channel' is categorical"),
        ({"name": "x", "entity": "ghost", "age_bands": ["7d"]}, "unknown entity 'ghost'"),
        ({"name": "x", "entity": "card"}, "needs `age_bands`"),
        ({"name": "x", "column": "amount", "entity": "card"}, "either `column` or `entity`"),
        ({"name": "x", "column": "amount", "bands": [5, 1]}, "strictly ascending"),
    ],
)
def test_a_bad_slice_is_refused_naming_its_key(slice_, message):
    data = CARDS.model_dump(mode="json")
    data["slices"] = [slice_]
    with pytest.raises(ValidationError, match=message.replace("(", r"\(")):
        type(CARDS).model_validate(data)
