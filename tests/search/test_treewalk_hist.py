"""HistGradientBoosting walked by the compiled loop gives the estimator's own predictions:
raw scores bit for bit (the same comparisons, the same leaf values added to the baseline
in tree order), probabilities and values through the estimator's own loss. On public
tables' tree design matrices (held-out rows with NaN), on rows at the split thresholds,
through the threaded path, in a fused walk, and inside the compiled predictor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)

from mlwright.search import treewalk
from mlwright.search.members import _probe_rows, native_predictor
from mlwright.search.treewalk import forest_walker
from mlwright.search.treewalk_hist import hist_gb_walker
from suite_design import suite_design

pytest.importorskip("numba")


def _design(name: str, rows: int = 2400) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(train matrix, target, held-out matrix, task): a suite table through the tree
    preprocessing, with NaN in one cell in ten."""
    d = suite_design(name, "tree", rows=rows, seed=3, nan_share=0.1)
    return d.Xt, d.y.astype(float), d.Xh, d.task


def _fit(Xt: np.ndarray, y: np.ndarray, task: str, **params: object) -> object:
    if task == "regression":
        return HistGradientBoostingRegressor(max_iter=60, random_state=0, **params).fit(Xt, y)
    return HistGradientBoostingClassifier(max_iter=60, random_state=0, **params).fit(
        Xt, y.astype(int))


def _assert_walk_equals_estimator(est: object, X: np.ndarray, task: str) -> None:
    walker = hist_gb_walker(est, task == "regression")
    assert walker is not None
    assert np.array_equal(walker.raw(X), est._raw_predict(X))  # type: ignore[attr-defined]
    expected = est.predict(X) if task == "regression" else est.predict_proba(X)  # type: ignore[attr-defined]
    ours = walker(X)
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("name", ["telco_churn", "hpc_jobs", "diamonds"])
def test_hist_gb_walk_equals_the_estimator(name):
    """Binary, multiclass and regression, on held-out rows and probe rows."""
    Xt, y, Xh, task = _design(name)
    est = _fit(Xt, y, task)
    _assert_walk_equals_estimator(est, Xh, task)
    walker = hist_gb_walker(est, task == "regression")
    assert walker is not None
    _assert_walk_equals_estimator(est, _probe_rows(walker.walker, Xh.shape[1]), task)


def test_large_batches_walk_threaded_with_the_same_values():
    Xt, y, Xh, task = _design("hpc_jobs")
    est = _fit(Xt, y, task)
    big = np.concatenate([Xh] * 5)
    assert len(big) >= 2048
    _assert_walk_equals_estimator(est, big, task)


def test_missing_values_seen_in_training_go_their_learned_way():
    """NaN only in some features while training: the nodes' missing_go_to_left, both
    ways, and NaN in a feature that had none when fitting."""
    Xt, y, Xh, task = _design("telco_churn")
    Xt = Xt.copy()
    Xt[:, 1:] = np.nan_to_num(Xt[:, 1:], nan=0.0)
    est = _fit(Xt, y, task, max_leaf_nodes=63)
    _assert_walk_equals_estimator(est, Xh, task)


def test_categorical_splits_keep_the_estimator():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.integers(0, 5, 400), rng.normal(size=400)]).astype(float)
    y = (X[:, 0] % 2 == 0).astype(int)
    est = HistGradientBoostingClassifier(max_iter=10, categorical_features=[0],
                                         random_state=0).fit(X, y)
    assert hist_gb_walker(est, False) is None
    predict, path = native_predictor(est, False)
    assert path == "native"
    np.testing.assert_array_equal(predict(X), est.predict_proba(X))


def test_native_predictor_takes_the_walk_and_fuses_it():
    Xt, y, Xh, task = _design("hpc_jobs")
    est = _fit(Xt, y, task)
    predict, path = native_predictor(est, False)
    assert path == "hist_gb-treewalk"
    np.testing.assert_allclose(predict(Xh), est.predict_proba(Xh), rtol=1e-14, atol=1e-15)
    forest = forest_walker(RandomForestClassifier(n_estimators=5, random_state=0)
                           .fit(Xt, y.astype(int)))
    assert forest is not None
    fused, starts = treewalk.fuse([predict.tree_walker, forest.walker])
    X = np.ascontiguousarray(Xh[:40])
    both = fused.raw(X)
    width = predict.tree_walker.n_out
    np.testing.assert_array_equal(predict.from_raw(both[:, starts[0]:starts[0] + width]),
                                  predict(X))


def test_the_compiled_predictor_walks_hist_gb(trump):
    """A trained ensemble with HistGradientBoosting: its member takes the walk, and the
    compiled predictor equals the pandas path on records and on the frame."""
    import mlwright as mw
    from mlwright.search.predictor import compile_predictor

    result = mw.train(trump, "source", families=["hist_gb"], n_trials=2, seed=0)
    predictor = compile_predictor(result.model, result.contract)
    assert {d["path"] for d in predictor.describe()} == {"hist_gb-treewalk"}
    X = trump.drop(columns="source").head(60)
    np.testing.assert_allclose(predictor.raw_frame(X),
                               result.model.raw_predict(X, compiled=False), rtol=0,
                               atol=1e-12)
    for row, record in enumerate(X.head(10).to_dict("records")):
        record = {k: (None if isinstance(v, float) and v != v else
                      v.isoformat() if isinstance(v, pd.Timestamp) else v)
                  for k, v in record.items()}
        np.testing.assert_allclose(predictor.predict_records([record])[1],
                                   result.model.raw_predict(X.iloc[[row]], compiled=False),
                                   rtol=0, atol=1e-12)
