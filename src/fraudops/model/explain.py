"""Reason codes: what pushed one score up, as feature contributions and plain phrases.

A contribution is the feature's SHAP value in log-odds: for each row, ``base + Σ contributions``
equals the model's raw score (the logit of the fraud probability) to float rounding.

- **HistGradientBoosting** (the default model): exact path-dependent TreeSHAP (Lundberg et al.,
  "From local explanations to global understanding with explainable AI for trees", Nature
  Machine Intelligence 2, 2020) computed by ``shap.TreeExplainer``; scikit-learn has no
  contribution output of its own. Why shap and not its Saabas approximation:
  ``benchmarks/reason_codes.py``.
- **Logistic regression**: ``φ_i = β_i (x_i − μ_i) / σ_i`` with the scaler's training mean and
  scale, the exact Shapley value of a linear model with independent features (Lundberg and Lee,
  "A unified approach to interpreting model predictions", NeurIPS 2017, linear SHAP).
- **HistGradientBoosting with categorical inputs**: the same exact TreeSHAP, each categorical
  split routed as scikit-learn routes the row (:mod:`fraudops.model.category_shap`; shap alone
  reads a category set as a threshold and its contributions would not add up).
- Not explained (:class:`Unexplainable`): the isolation forest (label-free, no log-odds) and
  logistic regression with categorical inputs (one-hot columns, not features).

Only feature names and numbers leave this module: no id is ever part of a reason code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from fraudops.model.category_shap import CategoricalTreeShap
from fraudops.spec.describe import Phrase, feature_phrases
from fraudops.spec.model import DatasetSpec


class Unexplainable(ValueError):
    """The model has no exact contributions here; the message says why."""


@dataclass(frozen=True, slots=True)
class ReasonCode:
    """One feature pushing a score up.

    Attributes:
        feature: the model input's name (a spec feature).
        value: its value for this event.
        contribution: its SHAP value, log-odds (> 0: towards fraud).
        phrase: the value in words, from the spec's feature definition.
    """

    feature: str
    value: float | str
    contribution: float
    phrase: str

    def as_dict(self) -> dict[str, Any]:
        """The reason code as the API and the log show it."""
        return {
            "feature": self.feature,
            "value": self.value,
            "contribution": self.contribution,
            "phrase": self.phrase,
        }


class Explainer:
    """Contributions and reason codes of one fitted model pipeline.

    Args:
        pipeline: a fitted :func:`fraudops.model.pipeline.build_model` pipeline.
        features: the model's input names, in order (m names).
        spec: the dataset spec (the phrases come from its feature definitions).
        typical: each feature's training mean ("usual" in the phrase); missing ones are not
            shown.

    Raises:
        Unexplainable: an isolation forest, a logistic regression with categorical inputs, or
            an unknown estimator.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        features: Sequence[str],
        spec: DatasetSpec,
        typical: Mapping[str, float] | None = None,
    ) -> None:
        estimator = pipeline.named_steps["model"]
        self.features = tuple(features)
        #: The pipeline's encoding step when categories are encoded (inputs are then frames).
        self._encode: Any = None
        phrases = feature_phrases(spec)
        self._phrases: tuple[Phrase, ...] = tuple(phrases[f] for f in self.features)
        usual = typical or {}
        self._usual = tuple(usual.get(f) for f in self.features)
        self._weights: np.ndarray | None = None
        categorical = sorted(set(features) & set(spec.categorical_features()))
        if categorical and isinstance(estimator, HistGradientBoostingClassifier):
            self._encode = pipeline.named_steps["select"]
            encoded = [n.split("__", 1)[1] for n in self._encode.get_feature_names_out()]
            self._order = np.array([encoded.index(f) for f in self.features], dtype=np.intp)
            self._tree: Any = CategoricalTreeShap(estimator)
            self.base = self._tree.expected_value
        elif categorical:
            raise Unexplainable(
                f"{type(estimator).__name__} with categorical inputs {categorical} has no "
                "per-feature contributions here (its inputs are one-hot columns)"
            )
        elif isinstance(estimator, HistGradientBoostingClassifier):
            import shap  # about 1 s to import: only where reason codes are used

            self._tree = shap.TreeExplainer(estimator, model_output="raw")
            self.base = float(np.ravel(self._tree.expected_value)[0])
        elif _is_scaled_logistic(estimator):
            scale, classifier = estimator.named_steps["scale"], estimator.named_steps["classifier"]
            self._weights = classifier.coef_[0] / scale.scale_
            self._means = scale.mean_
            self.base = float(classifier.intercept_[0])
        else:
            raise Unexplainable(f"{type(estimator).__name__} has no log-odds contributions")

    def contributions(self, inputs: np.ndarray | pd.DataFrame) -> np.ndarray:
        """Contributions (n rows × m features in :attr:`features` order, log-odds).

        Args:
            inputs: n rows of the model's input: a frame holding the features (categories
                as they are), or without categorical inputs an n × m float matrix.

        ``self.base + contributions.sum(axis=1)`` is the model's raw score of each row.
        """
        if self._encode is not None:
            frame = pd.DataFrame(inputs, columns=list(self.features))
            encoded = self._encode.transform(frame)
            return self._tree.shap_values(encoded)[:, self._order]
        X = np.asarray(inputs, dtype=np.float64)
        if self._weights is not None:
            return (X - self._means) * self._weights
        return np.asarray(self._tree.shap_values(X, check_additivity=False), dtype=np.float64)

    def reasons(
        self, inputs: np.ndarray | pd.DataFrame, rows: Sequence[Mapping[str, Any]], k: int
    ) -> list[tuple[ReasonCode, ...]]:
        """The top-``k`` positive contributions of each row, largest first, as reason codes.

        Args:
            inputs: n rows of the model's input (see :meth:`contributions`).
            rows: the same n rows as name → value (the values shown in the phrases).
            k: reason codes per row (>= 1); a row has fewer when fewer features push it up.
        """
        if len(inputs) == 0:
            return []
        out = []
        for values, row in zip(self.contributions(inputs), rows, strict=True):
            order = np.argsort(-values, kind="stable")[:k]
            codes = []
            for j in order:
                if values[j] <= 0:
                    break
                name, value = self.features[j], row[self.features[j]]
                codes.append(
                    ReasonCode(
                        name,
                        value,
                        float(values[j]),
                        self._phrases[j].say(value, self._usual[j]),
                    )
                )
            out.append(tuple(codes))
        return out


def _is_scaled_logistic(estimator: Any) -> bool:
    steps = getattr(estimator, "named_steps", {})
    return isinstance(steps.get("scale"), StandardScaler) and isinstance(
        steps.get("classifier"), LogisticRegression
    )
