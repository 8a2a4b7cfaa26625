"""The ensemble's fast prediction paths give exactly what the wrapped estimators give."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest
from sklearn.ensemble import ExtraTreesRegressor, RandomForestClassifier

from mlwright.data.kinds import Task
from mlwright.datasets import load_suite
from mlwright.scoring import get_metric
from mlwright.search.ensemble import full_proba, greedy_selection, predict_values


def _hpc():
    df = load_suite("hpc_jobs", nrows=1500)
    X = df[["compounds", "input_fields", "iterations", "num_pending", "hour"]].to_numpy(float)
    X[::9, 1] = np.nan  # missing values take the trees' learned default branch
    y = df["class"].map({c: i for i, c in enumerate(sorted(df["class"].unique()))}).to_numpy()
    return X, y


def test_forest_fast_path_matches_predict_proba_even_with_an_absent_class():
    X, y = _hpc()
    keep = y != 2  # a class never seen while fitting gets probability 0
    forest = RandomForestClassifier(n_estimators=25, random_state=0).fit(X[keep], y[keep])
    fast = full_proba(forest, X[:300], 4)
    np.testing.assert_allclose(fast[:, [0, 1, 3]], forest.predict_proba(X[:300]))
    assert np.all(fast[:, 2] == 0)


def test_forest_and_lightgbm_fast_paths_match_for_regression_and_classes():
    X, y = _hpc()
    target = np.nan_to_num(X[:, 0])
    trees = ExtraTreesRegressor(n_estimators=25, random_state=0).fit(X, target)
    np.testing.assert_allclose(predict_values(trees, X[:300]), trees.predict(X[:300]))
    booster = lgb.LGBMClassifier(n_estimators=30, verbose=-1).fit(X, y)
    np.testing.assert_allclose(full_proba(booster, X[:300], 4), booster.predict_proba(X[:300]))
    binary = lgb.LGBMClassifier(n_estimators=30, verbose=-1).fit(X, (y == 3).astype(int))
    np.testing.assert_allclose(full_proba(binary, X[:300], 2), binary.predict_proba(X[:300]))


def test_greedy_selection_blends_complementary_models():
    # Two noisy views of the same signal: their average beats either one alone.
    rng = np.random.default_rng(0)
    truth = rng.normal(size=2000)
    y = (truth > 0).astype(int)
    a = 1 / (1 + np.exp(-(truth + rng.normal(scale=1.5, size=2000))))
    b = 1 / (1 + np.exp(-(truth + rng.normal(scale=1.5, size=2000))))
    bad = rng.random(2000)
    preds = [np.column_stack([1 - p, p]) for p in (a, b, bad)]
    metric = get_metric("roc_auc", Task.BINARY)
    weights = greedy_selection(preds, y, metric)
    # Both views carry the blend; pure noise gets at most a sliver (it can help by chance).
    assert {0, 1} <= set(weights) and weights[0] + weights[1] >= 0.9
    assert sum(weights.values()) == pytest.approx(1.0)
    blended = sum(preds[i] * w for i, w in weights.items())
    assert metric.score(y, blended) > max(metric.score(y, preds[0]), metric.score(y, preds[1]))
