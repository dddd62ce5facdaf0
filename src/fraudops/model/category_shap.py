"""Exact TreeSHAP of a HistGradientBoosting model with categorical splits, through shap.

``shap.TreeExplainer`` reads every split as ``x <= threshold`` (missing values to the learnt
side), while a categorical split of scikit-learn sends a category left when it is in a bitset
(``_predictor.pyx``: negative codes, NaN and categories unseen in training go the missing
side). Path-dependent TreeSHAP (Lundberg et al., 2020, Algorithm 2) only needs, per node, which
child the explained row goes to (the "hot" child) and the training cover of each child (for the
features left out), so a categorical node can be explained exactly by giving it, for that row,
a threshold of +inf (the row goes left) or -inf (it goes right); the covers are untouched. This
module does that, one row at a time, under a lock (the thresholds are shared state): the same
exactness and cost per row as the numeric case (about 1 ms for 300 trees).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier


def _bits(bitsets: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Whether each ``codes[k]`` (0–255) is set in ``bitsets[k]`` (k × 8 uint32 words)."""
    words = bitsets[np.arange(len(codes)), codes // 32]
    return ((words >> (codes % 32).astype(np.uint32)) & 1).astype(bool)


class CategoricalTreeShap:
    """Contributions of a fitted binary HistGradientBoosting classifier with categorical
    splits (see the module docstring), in the model's input order.

    Attributes:
        expected_value: the model's base value (log-odds).

    Raises:
        ValueError: the model is not a fitted binary HistGradientBoosting classifier.
    """

    def __init__(self, model: HistGradientBoostingClassifier) -> None:
        import shap

        if not hasattr(model, "_predictors") or len(model.classes_) != 2:
            raise ValueError("needs a fitted binary HistGradientBoostingClassifier")
        self._explainer: Any = shap.TreeExplainer(model, model_output="raw")
        self.expected_value = float(np.ravel(self._explainer.expected_value)[0])
        known, feature_map = model._bin_mapper.make_known_categories_bitsets()
        trees, nodes, features, raw, seen, missing_left = [], [], [], [], [], []
        for t, (predictor,) in enumerate(model._predictors):
            table = predictor.nodes
            for i in np.flatnonzero(table["is_categorical"] & ~table["is_leaf"].astype(bool)):
                feature = int(table["feature_idx"][i])
                trees.append(t)
                nodes.append(i)
                features.append(feature)
                raw.append(predictor.raw_left_cat_bitsets[table["bitset_idx"][i]])
                seen.append(known[feature_map[feature]])
                missing_left.append(bool(table["missing_go_to_left"][i]))
        self._trees = np.array(trees, dtype=np.intp)
        self._nodes = np.array(nodes, dtype=np.intp)
        self._features = np.array(features, dtype=np.intp)
        self._raw = np.array(raw, dtype=np.uint32).reshape(-1, 8)
        self._seen = np.array(seen, dtype=np.uint32).reshape(-1, 8)
        self._missing_left = np.array(missing_left, dtype=bool)
        self._lock = threading.Lock()

    def _goes_left(self, row: np.ndarray) -> np.ndarray:
        """scikit-learn's routing of ``row`` at every categorical node (True: left)."""
        values = row[self._features]
        usable = ~np.isnan(values) & (values >= 0) & (values < 256)
        codes = np.where(usable, values, 0).astype(np.intp)
        in_left = usable & _bits(self._raw, codes)
        known = usable & _bits(self._seen, codes)
        return np.where(in_left, True, np.where(known, False, self._missing_left))

    def shap_values(self, X: np.ndarray) -> np.ndarray:
        """Contributions (n × m, log-odds) of n encoded model inputs (n × m floats)."""
        X = np.asarray(X, dtype=np.float64)
        out = np.empty_like(X)
        thresholds = self._explainer.model.thresholds
        for r in range(len(X)):
            side = np.where(self._goes_left(X[r]), np.inf, -np.inf)
            with self._lock:
                thresholds[self._trees, self._nodes] = side
                out[r] = self._explainer.shap_values(X[r : r + 1], check_additivity=False)[0]
        return out
