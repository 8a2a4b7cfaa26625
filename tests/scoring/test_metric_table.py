"""The metric table: fast point functions agree with scikit-learn, every alias resolves,
directions and defaults per task are right."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from mlwright.data.kinds import Task
from mlwright.exceptions import ConfigError
from mlwright.scoring import (
    DEFAULT_METRIC,
    METRICS,
    canonical_name,
    get_metric,
    greater_is_better,
    metric_info,
    metric_label,
    row_terms,
)

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


def test_every_alias_resolves_to_its_row():
    for row in METRICS.values():
        assert canonical_name(row.name) == row.name
        for alias in row.aliases:
            assert canonical_name(alias) == row.name
            assert metric_info(alias) is row
    # the two vocabularies the search and the report used to have
    assert canonical_name("pr_auc") == "average_precision"
    assert canonical_name("median_ae") == "median_absolute_error"
    assert get_metric("pr_auc", Task.BINARY).name == "average_precision"
    assert get_metric("neg_median_absolute_error", Task.REGRESSION).name == \
        "median_absolute_error"


def test_directions():
    lower = {"log_loss", "brier", "rmse", "mse", "mae", "mape", "median_absolute_error"}
    for row in METRICS.values():
        assert row.greater_is_better is (row.name not in lower), row.name
        assert greater_is_better(row.name) is row.greater_is_better
        low, high = row.bounds
        assert low < high
    assert greater_is_better("median_ae") is False
    # names outside the table: the scikit-learn scorer's sign
    assert greater_is_better("neg_max_error") is False
    assert greater_is_better("explained_variance") is True
    for name in ("roc_auc", "log_loss", "rmse", "r2", "brier"):
        task = Task.REGRESSION if name in ("rmse", "r2") else Task.BINARY
        assert get_metric(name, task).greater_is_better is METRICS[name].greater_is_better


def test_default_metric_per_task():
    assert DEFAULT_METRIC == {Task.BINARY: "roc_auc", Task.MULTICLASS: "log_loss",
                              Task.REGRESSION: "rmse"}
    for task, name in DEFAULT_METRIC.items():
        assert get_metric(None, task).name == name == get_metric("auto", task).name
        assert task in METRICS[name].tasks


def test_labels_and_report_rows():
    assert metric_label("pr_auc") == "PR AUC (average precision)"
    assert metric_label("f1_macro") == "F1 (macro)"
    assert metric_label("roc_auc_weighted") == "ROC AUC (weighted)"
    assert metric_label("precision_macro") == "Precision (macro)"
    assert metric_label("explained_variance") == "explained_variance"
    # report-only rows: the search takes them from scikit-learn by name
    assert METRICS["precision"].point is None
    assert get_metric("precision", Task.BINARY).name == "precision"
    with pytest.raises(ConfigError, match="Unknown metric 'roc_auc_macro'"):
        get_metric("roc_auc_macro", Task.MULTICLASS)


def test_binary_only_metrics_refuse_multiclass():
    for name in ("f1", "average_precision", "pr_auc"):
        with pytest.raises(ConfigError, match="is for binary targets"):
            get_metric(name, Task.MULTICLASS)
    with pytest.raises(ConfigError, match="does not fit a multiclass task"):
        get_metric("rmse", Task.MULTICLASS)


def test_brier_is_scikit_learns_on_binary_targets():
    # Regression: the search's binary Brier summed both columns, twice brier_score_loss
    # (and twice the report's value under the same name).
    y = rng.integers(0, 2, 300)
    p = rng.random(300)
    proba = np.column_stack([1 - p, p])
    brier = get_metric("neg_brier_score", Task.BINARY)
    assert brier.name == "brier"
    assert brier.score(y, proba) == pytest.approx(skm.brier_score_loss(y, p))
    ym = rng.integers(0, 3, 300)
    pm = rng.dirichlet(np.ones(3), 300)
    assert get_metric("brier", Task.MULTICLASS).score(ym, pm) == pytest.approx(
        np.mean(np.sum((pm - np.eye(3)[ym]) ** 2, axis=1)))


@pytest.mark.parametrize(("name", "task"), [
    ("log_loss", Task.BINARY), ("log_loss", Task.MULTICLASS), ("accuracy", Task.MULTICLASS),
    ("brier", Task.BINARY), ("brier", Task.MULTICLASS), ("rmse", Task.REGRESSION),
    ("mse", Task.REGRESSION), ("mae", Task.REGRESSION)])
def test_row_terms_average_to_the_metric(name: str, task: Task) -> None:
    if task is Task.REGRESSION:
        y, pred = rng.normal(size=200), rng.normal(size=200)
    else:
        k = 2 if task is Task.BINARY else 4
        y, pred = rng.integers(0, k, 200), rng.dirichlet(np.ones(k), 200)
    terms, root = row_terms(name, y, pred)
    value = np.sqrt(terms.mean()) if root else terms.mean()
    assert value == pytest.approx(get_metric(name, task).score(y, pred))
    assert row_terms("roc_auc", y, pred) is None
