"""Reason codes: exact contributions that add up to the score, phrases from the spec."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit

from fraudops.model.explain import Explainer, Unexplainable
from fraudops.model.pipeline import build_model
from fraudops.spec import load_spec

pytestmark = pytest.mark.unit

SPEC = load_spec("handbook")
FEATURES = SPEC.feature_names()
RISK = "TERMINAL_ID_RISK_7DAY_WINDOW"


def _training_frame(rows: int = 6000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """The handbook's 18 features at random; fraud where the terminal's 7-day risk is high."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.random((rows, len(FEATURES))) * 5, columns=FEATURES)
    frame[RISK] = rng.random(rows) * 0.2
    fraud = rng.random(rows) < 0.05
    frame.loc[fraud, RISK] += 0.5
    return frame, fraud.astype(int)


@pytest.fixture(scope="module")
def default_model():
    frame, labels = _training_frame()
    return build_model(features=FEATURES).fit(frame, labels), frame


def test_contributions_add_up_to_the_default_models_log_odds(default_model):
    model, frame = default_model
    explainer = Explainer(model, FEATURES, SPEC)
    rows = frame.head(300).to_numpy()
    contributions = explainer.contributions(rows)
    assert contributions.shape == (300, len(FEATURES))
    log_odds = logit(model.predict_proba(frame.head(300))[:, 1])
    assert np.abs(explainer.base + contributions.sum(axis=1) - log_odds).max() < 1e-6


def test_contributions_add_up_for_logistic_regression():
    frame, labels = _training_frame(2000)
    model = build_model("logistic_regression", features=FEATURES).fit(frame, labels)
    explainer = Explainer(model, FEATURES, SPEC)
    contributions = explainer.contributions(frame.to_numpy())
    log_odds = logit(model.predict_proba(frame)[:, 1])
    assert np.abs(explainer.base + contributions.sum(axis=1) - log_odds).max() < 1e-6


def test_the_top_reason_names_the_feature_that_raised_the_score_with_its_value(default_model):
    model, frame = default_model
    means = frame.mean().to_dict()
    explainer = Explainer(model, FEATURES, SPEC, means)
    row = {**frame.iloc[0].to_dict(), RISK: 0.6}
    (codes,) = explainer.reasons(np.array([[row[f] for f in FEATURES]]), [row], k=3)
    top = codes[0]
    assert top.feature == RISK and top.value == 0.6 and top.contribution > 1
    usual = f"{means[RISK]:.0%}"
    assert top.phrase == (
        f"60% of this terminal's labelled events in the 7 days ending 7 days ago were fraud "
        f"(usual: {usual})"
    )
    assert [c.contribution for c in codes] == sorted((c.contribution for c in codes), reverse=True)


def test_reasons_hold_only_features_pushing_the_score_up_at_most_k(default_model):
    model, frame = default_model
    explainer = Explainer(model, FEATURES, SPEC)
    matrix = frame.head(50).to_numpy()
    rows = frame.head(50).to_dict("records")
    for codes, contributions in zip(
        explainer.reasons(matrix, rows, k=2), explainer.contributions(matrix), strict=True
    ):
        assert len(codes) == min(2, int((contributions > 0).sum()))
        assert all(c.contribution > 0 for c in codes)
        assert {c.feature for c in codes} <= set(FEATURES)


def test_a_quiet_row_gets_no_reason_when_nothing_pushes_it_up(default_model):
    model, frame = default_model
    explainer = Explainer(model, FEATURES, SPEC)
    contributions = explainer.contributions(frame.to_numpy())
    quiet = int(np.argmin(contributions.max(axis=1)))
    if contributions[quiet].max() > 0:  # some feature pushes every row up: a row of one feature
        codes = explainer.reasons(frame.to_numpy()[[quiet]], [frame.iloc[quiet].to_dict()], k=20)
        assert len(codes[0]) == int((contributions[quiet] > 0).sum())
    assert explainer.reasons(np.empty((0, len(FEATURES))), [], k=3) == []


def test_models_without_exact_contributions_are_refused_with_the_reason():
    frame, labels = _training_frame(1000)
    forest = build_model("isolation_forest", features=FEATURES).fit(frame, labels)
    with pytest.raises(Unexplainable, match="AnomalyScoreClassifier"):
        Explainer(forest, FEATURES, SPEC)
    cards = load_spec("cards")
    with pytest.raises(Unexplainable, match=r"with categorical inputs.*'channel'"):
        Explainer(forest, cards.feature_names(), cards)


def test_categorical_splits_are_explained_exactly_with_unseen_and_missing_categories():
    cards = load_spec("cards")
    features = cards.feature_names()
    rng = np.random.default_rng(1)
    n = 4000
    frame = pd.DataFrame(rng.random((n, len(features))) * 3, columns=features)
    frame["mcc"] = rng.choice(["5411", "5812", "7995", "4829"], n)
    frame["channel"] = rng.choice(["pos", "ecom", "atm"], n)
    frame["country"] = rng.choice(["FR", "BE", "NL", "PT"], n)
    labels = ((frame["channel"] == "ecom") & (rng.random(n) < 0.3)).astype(int)
    model = build_model(
        features=features, categorical=cards.categorical_features(), max_categories=20
    ).fit(frame, labels)
    explainer = Explainer(model, features, cards)
    rows = frame.head(200).copy()
    rows.loc[rows.index[:3], "mcc"] = "never-seen"  # unseen: sklearn routes it as missing
    rows.loc[rows.index[3:6], "channel"] = None
    contributions = explainer.contributions(rows)
    log_odds = logit(model.predict_proba(rows)[:, 1])
    assert np.abs(explainer.base + contributions.sum(axis=1) - log_odds).max() < 1e-6
    ecom = rows[rows["channel"] == "ecom"].head(1)
    (codes,) = explainer.reasons(ecom, ecom.to_dict("records"), k=1)
    assert codes[0].feature == "channel" and codes[0].phrase == "channel 'ecom'"
