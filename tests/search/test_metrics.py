"""The search's fast metrics agree with scikit-learn's reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from mlwright.data.kinds import Task
from mlwright.exceptions import ConfigError
from mlwright.search.ensemble import greedy_selection
from mlwright.search.metrics import get_metric

rng = np.random.default_rng(0)


def test_binary_metrics_match_sklearn():
    y = rng.integers(0, 2, 400)
    p = np.round(rng.random(400), 2)  # ties exercise the rank-based AUC
    proba = np.column_stack([1 - p, p])
    assert get_metric("roc_auc", Task.BINARY).score(y, proba) == pytest.approx(
        skm.roc_auc_score(y, p))
    assert get_metric("log_loss", Task.BINARY).score(y, proba) == pytest.approx(
        skm.log_loss(y, proba))
    assert get_metric("accuracy", Task.BINARY).score(y, proba) == pytest.approx(
        skm.accuracy_score(y, (p >= 0.5).astype(int)))


def test_multiclass_and_regression_metrics_match_sklearn():
    y = rng.integers(0, 4, 300)
    proba = rng.dirichlet(np.ones(4), 300)
    assert get_metric(None, Task.MULTICLASS).score(y, proba) == pytest.approx(
        skm.log_loss(y, proba))
    yr, pr = rng.normal(size=200), rng.normal(size=200)
    assert get_metric("auto", Task.REGRESSION).score(yr, pr) == pytest.approx(
        skm.root_mean_squared_error(yr, pr))


def test_sklearn_scorer_names_are_accepted():
    metric = get_metric("neg_mean_absolute_error", Task.REGRESSION)
    assert metric.name == "mae" and not metric.greater_is_better
    explained = get_metric("explained_variance", Task.REGRESSION)
    yr = rng.normal(size=50)
    assert explained.score(yr, yr) == pytest.approx(1.0)
    assert explained.loss(yr, yr) == pytest.approx(-1.0)


def test_wrong_metric_for_task_is_a_clear_error():
    with pytest.raises(ConfigError, match="does not fit a regression task"):
        get_metric("roc_auc", Task.REGRESSION)
    with pytest.raises(ConfigError, match="Unknown metric 'accuracyy'"):
        get_metric("accuracyy", Task.BINARY)


def test_greedy_selection_blends_complementary_models():
    # Two noisy views of the same signal: their average beats either one alone.
    truth = rng.normal(size=2000)
    y = (truth > 0).astype(int)
    a = 1 / (1 + np.exp(-(truth + rng.normal(scale=1.5, size=2000))))
    b = 1 / (1 + np.exp(-(truth + rng.normal(scale=1.5, size=2000))))
    bad = rng.random(2000)
    preds = [np.column_stack([1 - p, p]) for p in (a, b, bad)]
    metric = get_metric("roc_auc", Task.BINARY)
    weights = greedy_selection(preds, y, metric)
    assert set(weights) == {0, 1}
    assert sum(weights.values()) == pytest.approx(1.0)
    blended = sum(preds[i] * w for i, w in weights.items())
    assert metric.score(y, blended) > max(metric.score(y, preds[0]), metric.score(y, preds[1]))
