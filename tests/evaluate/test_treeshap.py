"""Our TreeSHAP of scikit-learn forests and HistGradientBoosting: shap.TreeExplainer's values
on real tables (NaN included), additive to the model's own output, without importing shap."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)

from mlwright.evaluate.explain.contributions import _sklearn_tree
from mlwright.evaluate.explain.treeshap import tree_shap, tree_walker_for
from suite_design import suite_design

# Binary, multiclass (4 classes), regression.
TABLES = ["telco_churn", "hpc_jobs", "diamonds"]


def _design(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training matrix, target, and 80 held-out rows; a twentieth of the cells NaN."""
    d = suite_design(name, "tree", rows=800, seed=0, nan_share=0.05)
    return d.Xt, d.y, d.Xh[:80]


def _models(regression: bool) -> list:
    if regression:
        return [RandomForestRegressor(20, max_depth=12, random_state=0),
                ExtraTreesRegressor(15, random_state=0),
                HistGradientBoostingRegressor(max_iter=40, random_state=0)]
    return [RandomForestClassifier(20, random_state=0),
            ExtraTreesClassifier(15, max_depth=10, random_state=0),
            HistGradientBoostingClassifier(max_iter=40, random_state=0)]


def _raw(est, X: np.ndarray) -> np.ndarray:
    if isinstance(est, (HistGradientBoostingClassifier, HistGradientBoostingRegressor)):
        return est._raw_predict(X)
    return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)[:, None]


@pytest.mark.parametrize("name", TABLES)
def test_tree_shap_equals_shap_tree_explainer(name):
    import shap  # the reference

    X, y, rows = _design(name)
    for est in _models(name == "diamonds"):
        est.fit(X, y)
        walker, divisor = tree_walker_for(est)
        phi, base = tree_shap(walker, rows, divisor)
        explainer = shap.TreeExplainer(est)
        want = np.asarray(explainer.shap_values(rows, check_additivity=False))
        want = want[:, None, :] if want.ndim == 2 else np.transpose(want, (0, 2, 1))
        scale = max(1.0, float(np.abs(want).max()))
        assert phi.shape == want.shape, type(est).__name__
        np.testing.assert_allclose(phi, want, rtol=0, atol=1e-9 * scale,
                                   err_msg=type(est).__name__)
        np.testing.assert_allclose(base, np.atleast_1d(explainer.expected_value).ravel(),
                                   rtol=1e-12, atol=1e-12)
        # Additive: the base plus the row's values is the model's own raw output.
        np.testing.assert_allclose(base + phi.sum(axis=2), _raw(est, rows), rtol=1e-9,
                                   atol=1e-9 * scale, err_msg=type(est).__name__)


def test_a_feature_the_trees_never_split_on_gets_nothing():
    X, y, rows = _design("telco_churn")
    # A constant column cannot be split on.
    X, rows = (np.column_stack([M, np.ones(len(M))]) for M in (X, rows))
    est = RandomForestClassifier(10, max_depth=5, random_state=0).fit(X, y)
    used = np.zeros(X.shape[1], bool)
    for tree in est.estimators_:
        used[tree.tree_.feature[tree.tree_.feature >= 0]] = True
    assert not used[-1]
    walker, divisor = tree_walker_for(est)
    phi, _ = tree_shap(walker, rows, divisor)
    assert np.all(phi[:, :, ~used] == 0.0)
    assert np.abs(phi[:, :, used]).sum() > 0


def test_models_without_a_walk_keep_shap():
    X, y, rows = _design("telco_churn")
    est = GradientBoostingClassifier(n_estimators=10, random_state=0).fit(
        np.nan_to_num(X), y)
    assert tree_walker_for(est) is None
    phi, base = _sklearn_tree(est, np.nan_to_num(rows))
    np.testing.assert_allclose(base + phi.sum(axis=2),
                               est.decision_function(np.nan_to_num(rows))[:, None],
                               atol=1e-6)


def test_explaining_a_forest_member_does_not_import_shap():
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from sklearn.ensemble import RandomForestClassifier\n"
        "from mlwright.evaluate.explain.contributions import _sklearn_tree\n"
        "rng = np.random.default_rng(0)\n"
        "X = rng.normal(size=(200, 4)); y = (X[:, 0] > 0).astype(int)\n"
        "est = RandomForestClassifier(5, random_state=0).fit(X, y)\n"
        "phi, base = _sklearn_tree(est, X[:10])\n"
        "assert np.allclose(base + phi.sum(-1), est.predict_proba(X[:10]))\n"
        "print('shap' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
