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
