"""Interval tools: one seeded resampling stream, coverage on known cases, DeLong by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from mlwright.data.kinds import Task
from mlwright.exceptions import MlwrightError
from mlwright.scoring import get_metric
from mlwright.scoring.intervals import (
    BOOTSTRAP_MAX,
    bootstrap_metric,
    count_weights,
    delong,
    metric_interval,
    paired_bootstrap,
    paired_differences,
    percentile_interval,
    resample_rows,
    weighted_auc,
)

ACC = get_metric("accuracy", Task.BINARY)
AUC = get_metric("roc_auc", Task.BINARY)
F1 = get_metric("f1", Task.BINARY)


def test_one_resampling_stream_whatever_the_block_size() -> None:
    rows = np.vstack(list(resample_rows(50, 30, np.random.default_rng(4))))
    one_by_one = np.random.default_rng(4)
    assert np.array_equal(rows, np.vstack([one_by_one.integers(0, 50, 50) for _ in range(30)]))
    weights = np.vstack(list(count_weights(50, 30, np.random.default_rng(4))))
    assert weights.shape == (30, 50) and np.all(weights.sum(axis=1) == 50)
    assert np.array_equal(weights[3], np.bincount(rows[3], minlength=50))
    smaller = np.vstack(list(count_weights(50, 7, np.random.default_rng(4), size=20)))
    assert np.all(smaller.sum(axis=1) == 20)


def test_weighted_auc_matches_the_auc_of_resampled_copies() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 120)
    score = np.round(rng.random(120), 1)  # ties
    proba = np.column_stack([1 - score, score])
    idx = next(resample_rows(120, 5, np.random.default_rng(2)))
    weights = np.vstack([np.bincount(i, minlength=120) for i in idx]).astype(float)
    for i, w in zip(idx, weighted_auc(y, score, weights), strict=True):
        assert w == pytest.approx(AUC.score(y[i], proba[i]))


def test_bootstrap_is_seeded_and_the_rescored_path_agrees_with_weights() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    proba = rng.dirichlet(np.ones(2), 200)
    a = bootstrap_metric(ACC, y, proba, 100, np.random.default_rng(9))
    assert np.array_equal(a, bootstrap_metric(ACC, y, proba, 100, np.random.default_rng(9)))
    assert not np.array_equal(a, bootstrap_metric(ACC, y, proba, 100,
                                                  np.random.default_rng(10)))
    # F1 has no per-row terms: rescored copies of the same resamples
    f1 = bootstrap_metric(F1, y, proba, 20, np.random.default_rng(9))
    rows = next(resample_rows(200, 20, np.random.default_rng(9)))
    assert np.allclose(f1, [F1.score(y[i], proba[i]) for i in rows])
    assert metric_interval(ACC, y, proba, n_boot=100, seed=5) == \
        metric_interval(ACC, y, proba, n_boot=100, seed=5)


def test_bootstrap_interval_covers_a_known_accuracy() -> None:
    # Rows right with probability 0.7: the 95% interval should hold 0.7 about 95% of the time.
    rng = np.random.default_rng(0)
    hits = 0
    for rep in range(200):
        y = rng.integers(0, 2, 200)
        right = rng.random(200) < 0.7
        pred = np.where(right, y, 1 - y)
        proba = np.eye(2)[pred]
        _, low, high = metric_interval(ACC, y, proba, n_boot=200, seed=rep)
        hits += low <= 0.7 <= high
    assert 0.88 <= hits / 200 <= 0.99


def test_delong_by_hand() -> None:
    # Positives 0.8, 0.6, 0.4; negatives 0.6, 0.3, 0.2 (one tie).
    # Placements: positives 1, 5/6, 2/3 (AUC 5/6); negatives 1/2, 1, 1.
    # Variances (ddof=1): 1/36 and 1/12, so se^2 = (1/36)/3 + (1/12)/3 = 1/27.
    y = np.array([1, 1, 1, 0, 0, 0])
    score = np.array([0.8, 0.6, 0.4, 0.6, 0.3, 0.2])
    auc, se = delong(y, score)
    assert auc == pytest.approx(5 / 6)
    assert se == pytest.approx(1 / math.sqrt(27))
    assert auc == pytest.approx(AUC.score(y, np.column_stack([1 - score, score])))
    assert delong(np.array([1, 0, 0]), np.array([0.2, 0.1, 0.3])) is None


def test_delong_interval_covers_a_known_auc() -> None:
    # Scores N(0, 1) for negatives and N(1, 1) for positives: AUC = Phi(1 / sqrt(2)).
    truth = norm.cdf(1 / math.sqrt(2))
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(200):
        y = rng.integers(0, 2, 300)
        auc, se = delong(y, rng.normal(size=300) + y)
        hits += abs(auc - truth) <= 1.96 * se
    assert 0.9 <= hits / 200 <= 0.99


def test_large_windows_get_analytic_intervals() -> None:
    rng = np.random.default_rng(5)
    n = BOOTSTRAP_MAX + 1000
    y = rng.integers(0, 2, n)
    score = rng.normal(size=n) + y
    proba = np.column_stack([1 - norm.cdf(score), norm.cdf(score)])
    value, low, high = metric_interval(AUC, y, proba, n_boot=200, seed=0)
    auc, se = delong(y, proba[:, 1])
    assert value == pytest.approx(auc)
    assert (low, high) == pytest.approx((auc - 1.959964 * se, auc + 1.959964 * se))


def test_percentile_interval_holds_its_point() -> None:
    iv = percentile_interval(0.99, np.linspace(0.9, 0.98, 100))
    assert iv.low == pytest.approx(0.9, abs=0.01) and iv.high == 0.99
    assert math.isnan(percentile_interval(0.5, np.ones(5)).low)
    assert iv.to_dict()["value"] == 0.99
    assert percentile_interval(float("nan"), np.ones(50)).to_dict()["low"] is None


def test_paired_bootstrap_and_its_differences_share_resamples() -> None:
    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, 300)
    a = rng.dirichlet(np.ones(2), 300)
    b = np.clip(a + 0.2 * np.eye(2)[y], 0, None)
    b /= b.sum(axis=1, keepdims=True)
    r = paired_bootstrap(y, a, b, AUC.score, n_boot=200, seed=3)
    diffs = paired_differences(y, a, b, AUC.score, sign=1.0, n_boot=200, seed=3)
    assert r.n_boot == len(diffs) == 200
    assert (r.ci_low, r.ci_high) == pytest.approx(tuple(np.quantile(diffs, [0.025, 0.975])))
    assert r.improvement > 0 and r.p_value == pytest.approx(1 / 201)
    with pytest.raises(MlwrightError, match="same non-zero number of rows"):
        paired_bootstrap(y, a[:10], b, AUC.score)
    with pytest.raises(MlwrightError, match="single class"):
        paired_bootstrap(np.ones(20, dtype=int), a[:20], b[:20], AUC.score, n_boot=10)
