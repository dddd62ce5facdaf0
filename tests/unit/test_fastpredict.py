import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from fraudops.model.fastpredict import FlatTrees, fast_estimator

pytestmark = pytest.mark.unit


def test_flat_trees_equal_sklearn_probabilities_including_missing_values():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 6))
    X[rng.random(X.shape) < 0.05] = np.nan
    y = ((np.nan_to_num(X[:, 0]) + X[:, 1] ** 2 > 1) ^ (rng.random(3000) < 0.05)).astype(int)
    model = HistGradientBoostingClassifier(max_iter=60, random_state=0).fit(X, y)
    flat = FlatTrees(model)
    probe = rng.normal(size=(50, 6))
    probe[::7, 2] = np.nan
    np.testing.assert_allclose(flat.predict_proba(probe), model.predict_proba(probe), atol=1e-12)
    assert fast_estimator(model).__class__ is FlatTrees


def test_only_binary_fitted_models_are_flattened():
    with pytest.raises(ValueError, match="binary"):
        FlatTrees(HistGradientBoostingClassifier())
    other = object()
    assert fast_estimator(other) is other


def test_one_row_at_a_time_equals_sklearn_with_missing_values_and_values_on_a_split():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 5))
    y = ((X[:, 0] + X[:, 1] * X[:, 2] > 0.5) ^ (rng.random(3000) < 0.05)).astype(int)
    model = HistGradientBoostingClassifier(max_iter=40, random_state=0).fit(X, y)
    flat = FlatTrees(model)
    probe = rng.normal(size=(40, 5)) * 2
    for j in range(5):  # values exactly on split thresholds go left, as in sklearn
        on_split = flat.threshold[(flat.feature == j) & ~flat.is_leaf]
        probe[10:20, j] = rng.choice(on_split, size=10)
    probe[::9, 3] = np.nan
    one_by_one = np.vstack([flat.predict_proba(probe[i : i + 1]) for i in range(len(probe))])
    np.testing.assert_allclose(one_by_one, model.predict_proba(probe), atol=1e-12)
