import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from fraudops.data import contract as c
from fraudops.model.pipeline import (
    AnomalyScoreClassifier,
    UnknownModelError,
    build_model,
    fraud_scores,
)
from fraudops.offline.handbook import compute_features

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def data(small_history):
    features = compute_features(small_history)
    return features, small_history[c.LABEL].to_numpy()


@pytest.mark.parametrize(
    "kind", ["hist_gradient_boosting", "logistic_regression", "isolation_forest"]
)
def test_every_model_kind_is_one_pipeline_scoring_in_unit_interval(kind, data):
    features, labels = data
    model = build_model(kind, seed=0)
    assert model.fit(features, labels) is model
    scores = fraud_scores(model, features.assign(UNUSED=1.0))  # extra columns are ignored
    assert scores.shape == (len(features),)
    assert np.all((scores >= 0) & (scores <= 1))


def test_supervised_default_separates_frauds(data):
    features, labels = data
    scores = fraud_scores(build_model().fit(features, labels), features)
    assert scores[labels == 1].mean() > scores[labels == 0].mean() + 0.3


def test_unknown_model_name_is_refused():
    with pytest.raises(UnknownModelError, match="unknown model 'xgb'"):
        build_model("xgb")


def test_anomaly_classifier_follows_sklearn_conventions(data):
    features, _ = data
    estimator = AnomalyScoreClassifier(n_estimators=10, random_state=0)
    assert not hasattr(estimator, "forest_")
    assert clone(estimator).get_params() == estimator.get_params()
    fitted = estimator.fit(features.to_numpy())
    assert fitted is estimator and hasattr(estimator, "forest_")
    proba = estimator.predict_proba(features.to_numpy()[:100])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


@pytest.mark.parametrize("kind", ["hist_gradient_boosting", "logistic_regression"])
def test_categories_are_learned_and_unseen_ones_are_scored_not_refused(kind):
    rng = np.random.default_rng(0)
    n = 4_000
    frame = pd.DataFrame(
        {
            "amount": rng.normal(size=n),
            "channel": rng.choice(["pos", "web", "atm"], n),
            "merchant": rng.choice([f"m{i}" for i in range(120)], n),  # over max_categories
        }
    )
    labels = (frame["channel"] == "web").astype(int)
    model = build_model(
        kind,
        features=["amount", "channel", "merchant"],
        categorical=["channel", "merchant"],
        max_categories=20,
    ).fit(frame, labels)
    scores = fraud_scores(model, frame)
    assert scores[labels == 1].min() > scores[labels == 0].max()  # the channel alone decides
    unseen = frame.head(3).assign(channel=["kiosk", None, "web"], merchant=["new", "m1", None])
    assert np.isfinite(fraud_scores(model, unseen)).all()
