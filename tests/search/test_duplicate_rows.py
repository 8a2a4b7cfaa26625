"""Large tables' duplicate rows are learned once each, weighted by their count."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import mlwright as mw
from mlwright.data.kinds import Task
from mlwright.datasets import load_suite
from mlwright.search import duplicate_rows
from mlwright.search._base import FitContext, get_family, registered_families
from mlwright.search.duplicate_rows import group_rows
from mlwright.search.families.linear import LinearFamily


@pytest.fixture(scope="module")
def military() -> pd.DataFrame:
    return load_suite("military", nrows=20_000, seed=3)


def _codes(df: pd.DataFrame) -> np.ndarray:
    return np.column_stack([pd.factorize(df[c])[0] for c in df.columns]).astype(np.float64)


def test_the_groups_rebuild_every_row(military):
    X, y = _codes(military.drop(columns="branch")), pd.factorize(military["branch"])[0]
    g = group_rows(X, y, min_rows=1)
    assert g is not None
    assert g.n_groups == len(military.drop_duplicates())
    assert g.n_groups < len(y) / 10
    assert int(g.count.sum()) == len(y)
    np.testing.assert_array_equal(g.first, np.unique(g.of_row, return_index=True)[1])
    np.testing.assert_array_equal(X[g.first[g.of_row]], X)
    np.testing.assert_array_equal(y[g.first[g.of_row]], y)
    assert np.array_equal(g.count, np.bincount(g.of_row))


def test_missing_values_group_together():
    X = np.array([[1.0, np.nan], [1.0, np.nan], [2.0, 0.0], [1.0, np.nan]])
    g = group_rows(X, np.array([0, 0, 1, 0]), min_rows=1)
    assert g is not None
    assert g.n_groups == 2 and sorted(g.count.tolist()) == [1, 3]


def test_a_raw_table_groups_as_its_codes_do(military):
    # The search groups the table itself, before any preprocessing: text, booleans and
    # numbers, with missing values in each.
    table = military.drop(columns="branch").copy()
    table.loc[table.index[::50], "race"] = None
    table.loc[table.index[::70], "rank"] = np.nan
    y = pd.factorize(military["branch"])[0]
    from_table = group_rows(table, y, min_rows=1)
    from_codes = group_rows(_codes(table), y, min_rows=1)
    assert from_table is not None and from_codes is not None
    np.testing.assert_array_equal(from_table.of_row, from_codes.of_row)
    # A column of Python objects compares values as the preprocessing labels them, by
    # their text: 1 and 1.0 are two categories (for pandas' factorize they are one).
    mixed = pd.DataFrame({"a": pd.Series([1, 1.0, 1, 1.0] * 10, dtype=object)})
    g = group_rows(mixed, np.zeros(40, dtype=int), min_rows=1)
    assert g is not None and g.n_groups == 2


def test_a_large_table_is_prepared_once_per_distinct_row(monkeypatch, military):
    from mlwright.prep.table import TablePrep

    transformed: list[int] = []
    transform = TablePrep.transform
    monkeypatch.setattr(TablePrep, "transform", lambda self, X: transformed.append(len(X))
                        or transform(self, X))
    monkeypatch.setattr(duplicate_rows, "MIN_ROWS", 1_000)
    mw.train(military, target="branch", families=["linear"], n_trials=1, seed=0, cv=3,
             time_budget=120)
    # Each fold's training and validation rows, and the refit's: distinct rows only (every
    # row would be 13,333 and 6,667 a fold; the report's sample of 2,000 comes after).
    assert len(transformed) >= 7 and sorted(transformed)[-2] < 2_000


def test_no_groups_where_they_would_not_pay(military):
    X, y = _codes(military.drop(columns="branch")), pd.factorize(military["branch"])[0]
    assert group_rows(X, y) is None  # fewer rows than MIN_ROWS
    assert group_rows(sp.csr_matrix(X), y, min_rows=1) is None  # TF-IDF text
    diamonds = load_suite("diamonds")  # continuous columns: nearly every row distinct
    numeric = diamonds.select_dtypes("number")
    assert group_rows(numeric.to_numpy(np.float64), np.zeros(len(numeric)), min_rows=1) is None


def test_a_hash_collision_never_merges_different_rows(monkeypatch, military):
    X, y = _codes(military.drop(columns="branch")), pd.factorize(military["branch"])[0]
    # Every row hashed alike: the exact check finds the groups wrong and none are used.
    monkeypatch.setattr(duplicate_rows, "_hash",
                        lambda columns: np.zeros(len(columns[0]), dtype=np.uint64))
    assert group_rows(X, y, min_rows=1) is None


WEIGHTED = [f for f in (get_family(name) for name in registered_families()) if f.weighted
            and f.is_available()]


@pytest.mark.parametrize("family", WEIGHTED, ids=lambda f: f.name)
def test_a_weighted_fit_learns_what_the_repeated_rows_teach(family, military):
    X, y = _codes(military.drop(columns="branch")), pd.factorize(military["branch"])[0]
    g = group_rows(X, y, min_rows=1)
    assert g is not None
    ctx = FitContext(Task.MULTICLASS, 4, len(y), X.shape[1], seed=0, n_jobs=1)
    params = {k.split("__", 1)[1]: v for k, v in family.default_configs(ctx)[0].items()}
    rounds = {"lightgbm": "n_estimators", "xgboost": "n_estimators", "catboost": "iterations",
              "hist_gb": "max_iter"}
    if family.name in rounds:  # no validation rows to stop early on: a short fit
        params[rounds[family.name]] = 100

    def fitted(X_fit, y_fit, **weights):
        est = family.build(dict(params), ctx)
        family.fit(est, X_fit, y_fit, ctx, **weights)
        return est.predict_proba(X)

    every_row = fitted(X, y)
    weighted = fitted(X[g.first], y[g.first], sample_weight=g.weights())
    once_each = fitted(X[g.first], y[g.first])
    gap = np.abs(weighted - every_row).mean()
    # Unweighted, the distinct rows teach another distribution (mean gap 0.10 here for
    # every family); weighted, nearly the original one (0.002-0.056).
    assert gap < np.abs(once_each - every_row).mean() / 1.5
    if family.name == "linear":  # the same penalised likelihood: the same model
        assert gap < 1e-3


def test_lightgbm_gets_no_more_leaves_than_its_rows_can_fill(military):
    X, y = _codes(military.drop(columns="branch")), pd.factorize(military["branch"])[0]
    g = group_rows(X, y, min_rows=1)
    assert g is not None
    family = get_family("lightgbm")
    ctx = FitContext(Task.MULTICLASS, 4, g.n_groups, X.shape[1], seed=0, n_jobs=1)
    params = {"num_leaves": 256, "min_child_samples": 40, "n_estimators": 60,
              "learning_rate": 0.1}
    capped = family.build(dict(params), ctx)
    family.fit(capped, X[g.first], y[g.first], ctx, sample_weight=g.weights())
    # Each leaf holds 40 distinct rows or more: these rows fill far fewer than 256.
    assert capped.num_leaves == g.n_groups // 40 < 256
    grown = max(t["num_leaves"] for t in capped.booster_.dump_model()["tree_info"])
    assert grown <= capped.num_leaves
    # LightGBM with the leaves asked for grows the same trees.
    asked = family.build(dict(params), ctx)
    asked.fit(X[g.first], y[g.first], sample_weight=g.weights())
    assert asked.num_leaves == 256
    np.testing.assert_array_equal(capped.predict_proba(X), asked.predict_proba(X))


def test_the_search_fits_each_duplicate_row_once(monkeypatch, military):
    seen: list[int] = []
    fit = LinearFamily.fit

    def counting_fit(self, estimator, X, y, ctx, **kwargs):
        seen.append(X.shape[0])
        return fit(self, estimator, X, y, ctx, **kwargs)

    monkeypatch.setattr(LinearFamily, "fit", counting_fit)

    def loss(min_rows: int, **kwargs) -> float:
        seen.clear()
        monkeypatch.setattr(duplicate_rows, "MIN_ROWS", min_rows)
        result = mw.train(military, target="branch", families=["linear"], n_trials=2,
                          seed=0, cv=3, time_budget=120, **kwargs)
        return float(result.search.trials[0].loss)

    every_row = loss(10**9)
    assert min(seen) > 10_000  # each fold's 13,333 training rows, and the refit's 20,000
    grouped = loss(1_000)
    assert max(seen) < 2_000  # their distinct rows only
    assert grouped == pytest.approx(every_row, abs=1e-4)
    # Folds too small to group: the refit on all 20,000 rows is not grouped either (it is
    # the model the folds evaluated).
    loss(15_000)
    assert min(seen) > 10_000
    # Balanced class weights come from the rows an estimator gets: never grouped.
    loss(1_000, class_weight="balanced")
    assert min(seen) > 10_000


def test_every_style_shares_each_folds_groups(monkeypatch, military):
    # Found once per fold, not once per style: military's held 8 bytes a row per copy.
    monkeypatch.setattr(duplicate_rows, "MIN_ROWS", 1_000)
    groups: dict[str, list[object]] = {}

    def keep(rec, search) -> None:
        groups.update({style: [g for pair in search._groups[style] for g in pair]
                       for style in search._groups})

    mw.train(military, target="branch", families=["linear", "lightgbm"], n_trials=2, seed=0,
             cv=3, time_budget=120, on_trial=keep)
    assert set(groups) == {"linear", "tree"}
    assert len(groups["tree"]) == 6 and all(g is not None for g in groups["tree"])
    assert all(a is b for a, b in zip(groups["linear"], groups["tree"], strict=True))


def test_a_multiclass_booster_reserves_no_more_leaves_than_a_binary_lightgbm(military):
    from mlwright.search.families.boosting import MAX_LEAVES, MAX_ROUNDS, rounds_possible

    X, y = _codes(military.drop(columns="branch")), pd.factorize(military["branch"])[0]
    g = group_rows(X, y, min_rows=1)
    assert g is not None
    family = get_family("lightgbm")
    params = {"num_leaves": 256, "min_child_samples": 2, "learning_rate": 0.01}
    multiclass = FitContext(Task.MULTICLASS, 4, g.n_groups, X.shape[1], seed=0, n_jobs=2)
    est = family.build(dict(params), multiclass)
    assert est.n_estimators == MAX_ROUNDS
    family.fit(est, X[g.first], y[g.first], multiclass, sample_weight=g.weights())
    # Four trees a round: a quarter of the rounds a binary model of these leaves may grow.
    assert est.n_estimators == MAX_LEAVES // (4 * est.num_leaves) < MAX_ROUNDS
    assert est.booster_.num_trees() == 4 * est.n_estimators
    for task in (Task.BINARY, Task.REGRESSION):  # one tree a round: never capped
        ctx = FitContext(task, 2, g.n_groups, X.shape[1])
        assert rounds_possible(family.build(dict(params), ctx), 256, ctx) == MAX_ROUNDS
    # XGBoost's trees may have 2 ** max_depth leaves.
    xgb = get_family("xgboost")
    deep = xgb.build({"max_depth": 10, "learning_rate": 0.01}, multiclass)
    xgb.fit(deep, X[g.first], y[g.first], multiclass, sample_weight=g.weights())
    assert deep.n_estimators == MAX_LEAVES // (4 * 2**10)
    assert deep.get_booster().num_boosted_rounds() == deep.n_estimators


def test_duplicate_rows_keep_one_out_of_fold_prediction_each(monkeypatch, military):
    # A trial's out-of-fold predictions are kept once per distinct validated row and read
    # back for every row (military's 212 k validated rows: 6.5 MB a trial, 4 classes).
    monkeypatch.setattr(duplicate_rows, "MIN_ROWS", 1_000)
    result = mw.train(military, target="branch", families=["linear", "lightgbm"], n_trials=3,
                      seed=0, cv=3, time_budget=120)
    search = result.search
    y = search.y_encoded if search.validated is None else search.y_encoded[search.validated]
    complete = [r for r in search.trials if r.status == "complete" and r.oof is not None]
    assert len(complete) >= 2
    for r in complete:
        assert r.oof.shape == (len(y), 4)
        assert len(r._oof) < len(y) / 5  # stored: one row per distinct validated row
        assert r.loss == search.metric.loss(y, r.oof)  # read back: every row's, as scored
    blend = sum(search.trial_oof(r) * w for r in complete if (w := search.weights.get(r.number)))
    np.testing.assert_allclose(search.oof, blend, atol=1e-12)
