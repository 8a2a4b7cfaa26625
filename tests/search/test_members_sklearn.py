"""k-NN and MLP members called past scikit-learn's wrappers give the estimators' own
outputs bit for bit (binary, multiclass, regression; one row, a batch, held-out rows of
public tables), and matrices the wrappers would refuse or convert still reach them."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor

from mlwright.search.members import native_predictor
from suite_design import suite_design

# The MLPs stop early on purpose: their outputs, not their fit, are tested.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _design(name: str, rows: int = 1600) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(train matrix, target, held-out matrix, task) through the linear preprocessing."""
    d = suite_design(name, "linear", rows=rows, seed=5)
    return d.Xt, d.y, d.Xh, d.task


def _own(est: object, X: np.ndarray, regression: bool) -> np.ndarray:
    return est.predict(X) if regression else est.predict_proba(X)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["telco_churn", "hpc_jobs", "diamonds"])
@pytest.mark.parametrize("family", ["knn", "mlp"])
def test_members_equal_the_estimators_bit_for_bit(name, family):
    Xt, y, Xh, task = _design(name)
    regression = task == "regression"
    if family == "knn":
        cls = KNeighborsRegressor if regression else KNeighborsClassifier
        # Brute force, as the family's k-NN fits on its wide one-hot matrices.
        est = cls(n_neighbors=7, weights="distance", algorithm="brute").fit(Xt, y)
    else:
        cls = MLPRegressor if regression else MLPClassifier
        est = cls(hidden_layer_sizes=(16, 8), max_iter=30, random_state=0).fit(Xt, y)
    predict, path = native_predictor(est, regression)
    assert path == {"knn": "knn-argkmin", "mlp": "mlp-forward"}[family]
    for X in (Xh[:1], Xh[:37], Xh, Xt[:50]):  # Xt: training rows at distance 0 for k-NN
        ours, theirs = predict(X), _own(est, X, regression)
        assert ours.shape == theirs.shape
        assert ours.dtype == theirs.dtype
        assert np.array_equal(ours, theirs)


@pytest.mark.parametrize("name", ["telco_churn", "diamonds"])
def test_a_large_batch_goes_forward_in_bounded_passes(name, monkeypatch):
    # Each pass holds rows x units activations per layer: a batch is cut into passes of
    # FORWARD_ROWS rows, with the same outputs as one pass.
    from mlwright.search import members_sklearn

    Xt, y, Xh, task = _design(name)
    regression = task == "regression"
    cls = MLPRegressor if regression else MLPClassifier
    est = cls(hidden_layer_sizes=(32,), max_iter=30, random_state=0).fit(Xt, y)
    passes: list[int] = []
    forward = est._forward_pass_fast
    monkeypatch.setattr(est, "_forward_pass_fast",
                        lambda X, **kw: passes.append(len(X)) or forward(X, **kw))
    monkeypatch.setattr(members_sklearn, "FORWARD_ROWS", 100)
    predict, _ = native_predictor(est, regression)
    passes.clear()
    ours = predict(Xh)
    assert len(Xh) > 300 and max(passes) <= 100 and sum(passes) == len(Xh)
    assert np.array_equal(ours, _own(est, Xh, regression))


def test_matrices_the_wrappers_check_go_to_the_estimator():
    Xt, y, Xh, _ = _design("telco_churn")
    knn = KNeighborsClassifier(n_neighbors=5, weights="distance", algorithm="brute").fit(Xt, y)
    mlp = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(Xt, y)
    for est in (knn, mlp):
        predict, _ = native_predictor(est, False)
        bad = Xh[:3].copy()
        bad[1, 0] = np.nan
        with pytest.raises(ValueError, match="NaN"):  # the estimator's own refusal
            predict(bad)
        as32 = Xh[:20].astype(np.float32)
        assert np.array_equal(predict(as32), est.predict_proba(as32))


def test_other_neighbour_forms_keep_the_estimator():
    Xt, y, Xh, _ = _design("telco_churn")
    for est in (KNeighborsClassifier(n_neighbors=5).fit(Xt, y),  # uniform weights
                KNeighborsClassifier(n_neighbors=5, weights="distance",
                                     algorithm="kd_tree").fit(Xt, y),
                KNeighborsClassifier(n_neighbors=5, weights="distance", algorithm="brute",
                                     metric="manhattan").fit(Xt, y)):
        predict, path = native_predictor(est, False)
        assert path == "native"
        assert np.array_equal(predict(Xh), est.predict_proba(Xh))
