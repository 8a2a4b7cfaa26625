"""--trim: members go only while the CV loss stays within the noise of the full ensemble's."""

from __future__ import annotations

import numpy as np
import pytest

import mlwright as mw
from mlwright.data.kinds import Task
from mlwright.scoring import get_metric
from mlwright.search.splits import make_splits
from mlwright.search.trim import cv_noise, trim_weights


def _views(n: int, seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    # Two independent noisy views of one signal (their blend beats either) and pure noise.
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=n)
    y = (truth > 0).astype(int)
    views = [1 / (1 + np.exp(-(truth + rng.normal(scale=1.5, size=n)))) for _ in range(2)]
    views.append(rng.random(n))
    return y, [np.column_stack([1 - p, p]) for p in views]


def test_a_member_whose_removal_costs_more_than_the_noise_stays():
    # Exact property on synthetic views: with many rows the noise is small, and dropping
    # either view costs far more than it; the pure-noise member costs nothing to drop.
    y, preds = _views(20_000)
    metric = get_metric("roc_auc", Task.BINARY)
    folds = make_splits(y, Task.BINARY, cv=5).folds
    mask = np.ones(len(y), dtype=bool)
    trim = trim_weights(dict(enumerate(preds)), {0: 0.45, 1: 0.45, 2: 0.10}, y, metric,
                        folds, mask)
    assert [d["trial"] for d in trim.dropped] == [2]
    assert set(trim.weights) == {0, 1} and sum(trim.weights.values()) == pytest.approx(1.0)
    assert trim.loss_after - trim.loss_before <= trim.noise
    # Each view alone is worse than the pair by more than the noise: neither may go.
    for solo in (0, 1):
        assert metric.loss(y, preds[solo]) - trim.loss_before > trim.noise


def test_the_noise_is_the_standard_error_over_the_folds_or_holdout_parts():
    y, preds = _views(5_000, seed=1)
    metric = get_metric("roc_auc", Task.BINARY)
    mask = np.ones(len(y), dtype=bool)
    folds = make_splits(y, Task.BINARY, cv=5).folds
    noise, source = cv_noise(preds[0], y, metric, folds, mask)
    losses = [metric.loss(y[va], preds[0][va]) for _, va in folds]
    assert source == "folds"
    assert noise == pytest.approx(np.std(losses, ddof=1) / np.sqrt(5))
    holdout = make_splits(y, Task.BINARY, cv="holdout").folds
    val = np.zeros(len(y), dtype=bool)
    val[holdout[0][1]] = True
    noise, source = cv_noise(preds[0], y, metric, holdout, val)
    assert source == "holdout parts" and 0 < noise < 0.05


def test_trim_on_real_data_stops_where_every_further_removal_costs_more(telco):
    result = mw.train(telco, target="churn", n_trials=6, time_budget=120, trim=True,
                      families=["lightgbm", "linear", "random_forest"], seed=1)
    trim = result.trim
    assert trim is not None and trim["noise_from"] == "folds" and trim["noise"] > 0
    # Scores: ROC AUC, greater is better; the loss may rise by at most the noise in all.
    assert trim["cv_before"] - trim["cv_after"] <= trim["noise"] + 1e-12
    kept = {int(t) for t in trim["kept"]}
    assert {m["trial"] for m in result.model.describe()} == kept
    # The shipped model's CV is the trimmed ensemble's, from its own out-of-fold table.
    assert result.cv_score == pytest.approx(trim["cv_after"])
    search = result.search
    y, mask, metric = search.y_encoded, search.oof_mask, search.metric
    if len(kept) > 1:  # it stopped: dropping any one more would cost more than the noise
        oofs = {r.number: r.oof for r in search.trials if r.number in kept}
        for t in kept:
            rest = {u: trim["kept"][str(u)] for u in kept if u != t}
            total = sum(rest.values())
            blend = sum(oofs[u] * w / total for u, w in rest.items())
            assert metric.to_score(metric.loss(y[mask], blend[mask])) < \
                trim["cv_before"] - trim["noise"]
    for d in trim["dropped"]:
        assert d["trial"] not in kept and d["family"]
    assert "full" in trim["measured"] or not trim["dropped"]
