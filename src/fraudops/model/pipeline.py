"""The fraud model: one scikit-learn ``Pipeline`` from the feature frame to a fraud score."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted

from fraudops.data import contract as c
from fraudops.settings import MODEL_KINDS


class UnknownModelError(ValueError):
    """The model name is not one of :data:`fraudops.settings.MODEL_KINDS`."""


class AnomalyScoreClassifier(ClassifierMixin, BaseEstimator):
    """Label-free fraud scores from an ``IsolationForest``, exposed as ``predict_proba``.

    The fraud score is the isolation-forest anomaly score s(x) = 2^(-E[h(x)] / c(n)) of
    Liu, Ting and Zhou (2008), which lies in (0, 1]; scikit-learn's ``score_samples`` returns
    -s(x). Labels passed to :meth:`fit` are ignored.
    """

    def __init__(
        self,
        n_estimators: int = 200,
        max_samples: int | str = 4096,
        random_state: int | None = None,
    ):
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> AnomalyScoreClassifier:
        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=self.max_samples,
            random_state=self.random_state,
        ).fit(X)
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """n rows × 2: columns (genuine, fraud), the fraud column being s(x) in (0, 1]."""
        check_is_fitted(self, "forest_")
        anomaly = np.clip(-self.forest_.score_samples(X), 0.0, 1.0)
        return np.column_stack([1.0 - anomaly, anomaly])

    def predict(self, X: Any) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


#: Default hyper-parameters, lightly tuned on the handbook's chapter-5 protocol (benchmarks/).
HGB_PARAMS: dict[str, Any] = {
    "learning_rate": 0.05,
    "max_iter": 300,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 50,
    "l2_regularization": 1.0,
    "early_stopping": False,
}


def _estimator(kind: str, seed: int, categorical: Sequence[int] = ()) -> BaseEstimator:
    if kind == "hist_gradient_boosting":
        params = dict(HGB_PARAMS)
        if categorical:
            params["categorical_features"] = list(categorical)
        return HistGradientBoostingClassifier(random_state=seed, **params)
    if kind == "logistic_regression":
        return Pipeline(
            [("scale", StandardScaler()), ("classifier", LogisticRegression(max_iter=1000))]
        )
    if kind == "isolation_forest":
        return AnomalyScoreClassifier(random_state=seed)
    raise UnknownModelError(f"unknown model {kind!r}; choose one of {list(MODEL_KINDS)}")


def _encoder(kind: str, max_categories: int) -> BaseEstimator:
    """Categories to model inputs; rare ones share one bucket, unseen ones never fail.

    Trees read ordinal codes (HistGradientBoosting splits them natively; an unseen category
    becomes -1, which it treats as missing); logistic regression reads one-hot columns.
    """
    if kind == "logistic_regression":
        return OneHotEncoder(
            handle_unknown="infrequent_if_exist",
            max_categories=max_categories,
            sparse_output=False,
        )
    return OrdinalEncoder(
        handle_unknown="use_encoded_value",
        unknown_value=-1,
        encoded_missing_value=-1,
        max_categories=max_categories,
        dtype=np.float64,
    )


def build_model(
    kind: str = "hist_gradient_boosting",
    *,
    seed: int = 0,
    features: Sequence[str] = c.FEATURES,
    categorical: Sequence[str] = (),
    max_categories: int = 50,
) -> Pipeline:
    """An unfitted pipeline: select ``features`` from a frame (encoding the categorical ones) →
    estimator ``kind``.

    Args:
        kind: ``hist_gradient_boosting`` (default), ``logistic_regression`` or
            ``isolation_forest`` (label-free).
        seed: random state of the estimator.
        features: input columns, by default :data:`contract.FEATURES` (18 columns).
        categorical: the columns of ``features`` holding categories (strings or codes); they
            come first in the model's input, encoded (see :func:`_encoder`).
        max_categories: categories kept per column (2–250); rarer ones share one bucket.

    Raises:
        UnknownModelError: ``kind`` is not a known model name.
        ValueError: a categorical column is not one of ``features``.
    """
    numeric = [f for f in features if f not in set(categorical)]
    unknown = sorted(set(categorical) - set(features))
    if unknown:
        raise ValueError(f"categorical column(s) {unknown} are not among the features")
    if not categorical:
        select = ColumnTransformer([("features", "passthrough", list(features))], remainder="drop")
        return Pipeline([("select", select), ("model", _estimator(kind, seed))])
    select = ColumnTransformer(
        [
            ("categories", _encoder(kind, max_categories), list(categorical)),
            ("features", "passthrough", numeric),
        ],
        remainder="drop",
    )
    codes = range(len(categorical)) if kind == "hist_gradient_boosting" else ()
    return Pipeline([("select", select), ("model", _estimator(kind, seed, list(codes)))])


def fraud_scores(model: Pipeline, features: pd.DataFrame) -> np.ndarray:
    """Fraud scores in [0, 1] (n values) for a feature frame of n rows."""
    return np.asarray(model.predict_proba(features)[:, 1], dtype=np.float64)


def model_params(model: Pipeline) -> dict[str, str]:
    """The final estimator's parameters as strings (for registry tags and run params)."""
    estimator = model.named_steps["model"]
    return {k: str(v) for k, v in sorted(estimator.get_params(deep=False).items())}
