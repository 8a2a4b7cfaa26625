"""Explanations: exact per-member SHAP, additive in the ensemble's output, in original columns."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import mlwright as mw
from mlwright.data.kinds import Task
from mlwright.datasets import load_suite
from mlwright.evaluate.explain import explain_members, global_explanation
from mlwright.evaluate.explain.global_ import _permutation, _predict_design
from mlwright.evaluate.explain.local import _prepare
from mlwright.scoring import get_metric


def _train(df: pd.DataFrame, target: str, families: list[str], n_trials: int):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # n_trials ends the search; the budget only guards a slow, shared machine.
        return mw.train(df, target, time_budget=90, families=families, n_trials=n_trials,
                        seed=0)


@pytest.fixture(scope="module")
def telco_df() -> pd.DataFrame:
    df = load_suite("telco_churn", nrows=1000)
    # A column of pure noise: its permutation importance must stay near zero.
    df["noise"] = np.random.default_rng(0).uniform(size=len(df))
    return df


@pytest.fixture(scope="module")
def telco_ensemble(telco_df):
    return _train(telco_df.iloc[:700], "churn", ["lightgbm", "linear"], 2)


@pytest.fixture(scope="module", params=["lightgbm", "xgboost", "catboost", "random_forest"])
def single_tree(request, telco_df):
    return request.param, _train(telco_df.iloc[:600], "churn", [request.param], 1)


@pytest.fixture(scope="module")
def ames():
    df = load_suite("ames_housing", nrows=700)
    return df, _train(df, "Sale_Price", ["lightgbm", "linear"], 2)


@pytest.fixture(scope="module")
def hpc():
    df = load_suite("hpc_jobs", nrows=900)
    return df, _train(df, "class", ["lightgbm", "linear"], 2)


def _library_raw(family: str, estimator, Xt) -> np.ndarray:
    """The member's raw output straight from its library (log-odds; class 1 for forests)."""
    if family == "lightgbm":
        return estimator.booster_.predict(Xt, raw_score=True)
    if family == "xgboost":
        return estimator.predict(Xt, output_margin=True)
    if family == "catboost":
        return estimator.model_.predict(estimator._frame(Xt),
                                        prediction_type="RawFormulaVal")
    return estimator.predict_proba(Xt)[:, 1]  # a forest's raw output is the class fraction


def test_single_tree_model_contributions_plus_base_equal_its_raw_output(single_tree, telco_df):
    family, run = single_tree
    rows = telco_df.drop(columns="churn").iloc[600:680]
    (member,) = run.model.members
    assert member["family"] == family
    (local,) = explain_members(run, rows)
    raw = _library_raw(family, member["estimator"],
                       run.model.preps[member["style"]].transform(rows))
    # XGBoost computes in float32: its own margins carry ~1e-7 relative rounding.
    np.testing.assert_allclose(local.base_value + local.values.sum(axis=1), raw,
                               rtol=1e-6, atol=1e-6)
    assert local.columns == run.model.feature_names  # the user's columns, not fragments
    assert local.values.shape == (len(rows), len(run.model.feature_names))
    # The same through mw.explain(space="raw"), and additive in probability too.
    raw_again = mw.explain(run, rows, space="raw")
    np.testing.assert_allclose(raw_again.values, local.values)
    proba = mw.explain(run, rows)
    np.testing.assert_allclose(proba.base_value + proba.values.sum(axis=1),
                               run.model.predict_proba(rows)[:, 1], atol=1e-6)


def test_ensemble_is_additive_in_probability_space_per_original_column(telco_ensemble,
                                                                       telco_df):
    model = telco_ensemble.model
    assert len(model.members) == 2 and {m["family"] for m in model.members} == {
        "lightgbm", "linear"}
    rows = telco_df.drop(columns="churn").iloc[:50]
    local = mw.explain(telco_ensemble, rows)
    proba = model.predict_proba(rows)[:, 1]
    np.testing.assert_allclose(local.output, proba, atol=1e-9)
    np.testing.assert_allclose(local.base_value + local.values.sum(axis=1), proba, atol=1e-6)
    assert local.classes == [model.classes[1]]  # the positive class
    frame = local.to_frame()
    assert list(frame.columns) == list(model.feature_names)
    assert "contract" in frame.columns and not any("=" in c for c in frame.columns)
    # The linear member's one-hot fragments are summed into their column: a row's
    # contract contribution is not zero, and no fragment name appears anywhere.
    assert np.abs(frame["contract"]).max() > 0
    top = local.top(3, row=0)
    assert list(top.columns) == ["row", "column", "value", "contribution"]
    assert (top["row"] == rows.index[0]).all()  # which row it is, in the frame itself
    assert local.top(2, row=1)["row"].iloc[0] == rows.index[1]
    assert np.all(np.diff(np.abs(top["contribution"].to_numpy())) <= 0)
    assert top["value"].iloc[0] == rows[top["column"].iloc[0]].iloc[0]
    payload = json.loads(json.dumps(local.to_dict()))
    assert payload["space"] == "probability"
    first = payload["rows"][0]
    assert abs(payload["base_value"] + sum(first["contributions"].values())
               - first["output"]) < 1e-6


def test_one_row_explanations_match_batch_and_accept_a_dict(telco_ensemble, telco_df):
    rows = telco_df.drop(columns="churn").iloc[:5]
    batch = mw.explain(telco_ensemble, rows)
    single = mw.explain(telco_ensemble, rows.iloc[2].to_dict())
    np.testing.assert_allclose(single.values[0], batch.values[2], atol=1e-12)
    assert single.base_value == pytest.approx(batch.base_value)


def test_regression_explanation_adds_up_to_the_predicted_value(ames):
    df, run = ames
    rows = df.drop(columns="Sale_Price").iloc[:40]
    local = mw.explain(run, rows)
    pred = run.model.predict(rows)
    # Relative to prices of ~1e5: the rescale of a log-target member stays exact.
    np.testing.assert_allclose(local.base_value + local.values.sum(axis=1), pred,
                               rtol=1e-9, atol=1e-6)
    assert local.classes is None and local.values.shape == (40, len(run.model.feature_names))
    assert local.to_dict()["space"] == "value"  # a price, not a probability


def test_multiclass_has_a_class_axis_and_every_class_adds_up(hpc):
    df, run = hpc
    rows = df.drop(columns="class").iloc[:30]
    local = mw.explain(run, rows)
    k = len(run.model.classes)
    assert local.values.shape == (30, k, len(run.model.feature_names))
    assert local.classes == list(run.model.classes)
    proba = run.model.predict_proba(rows)
    np.testing.assert_allclose(local.base_value[None, :] + local.values.sum(axis=2), proba,
                               atol=1e-6)
    # The base is a probability vector: every member's base maps to one through softmax.
    assert local.base_value.sum() == pytest.approx(1.0)
    top = local.top(3, row=0)  # for the row's most probable class
    j = int(np.argmax(proba[0]))
    assert top["contribution"].iloc[0] == pytest.approx(
        local.values[0, j][np.argmax(np.abs(local.values[0, j]))])
    assert (top["class"] == local.classes[j]).all()  # the class it explains, named
    assert local.to_frame().shape == (30 * k, len(run.model.feature_names))
    json.dumps(local.to_dict())


def test_model_agnostic_fallback_is_additive_for_knn(telco_df):
    run = _train(telco_df.iloc[:500], "churn", ["knn"], 1)
    rows = telco_df.drop(columns="churn").iloc[500:503]
    local = mw.explain(run, rows, n_permutations=2)
    np.testing.assert_allclose(local.base_value + local.values.sum(axis=1),
                               run.model.predict_proba(rows)[:, 1], atol=1e-9)
    assert local.columns == run.model.feature_names


def test_permutation_importance_finds_what_matters_and_not_noise(telco_ensemble, telco_df):
    # Held-out rows: on its training rows a model has learnt some of the noise too.
    held_out = telco_df.iloc[700:]
    X, y = held_out.drop(columns="churn"), held_out["churn"]
    g = global_explanation(telco_ensemble, X, y, max_rows=250)
    perm = g.permutation.set_index("column")
    assert g.metric == "roc_auc"
    assert set(perm.index) == set(telco_ensemble.model.feature_names)
    assert perm.index[0] in {"tenure", "contract", "total_charges", "monthly_charges"}
    assert perm.loc["tenure", "importance"] > perm.loc["noise", "importance"] + 0.01
    assert abs(perm.loc["noise", "importance"]) < 0.01
    assert list(g.importance.columns) == ["column", "mean_abs_contribution"]
    assert np.all(np.diff(g.importance["mean_abs_contribution"].to_numpy()) <= 0)
    assert g.importance["column"].iloc[-1] != "tenure"
    assert len(g.dependence) == 5
    for col, frame in g.dependence.items():
        assert list(frame.columns) == ["value", "contribution"] and len(frame) == 250
        assert col in g.importance["column"].head(6).to_list()
    json.dumps(g.to_dict())


def test_shuffling_prepared_features_equals_shuffling_the_raw_column(telco_ensemble,
                                                                     telco_df):
    # The fast path of permutation importance relies on TablePrep preparing each column on
    # its own; compare with shuffling the raw column and preparing again.
    model = telco_ensemble.model
    X = model._frame(telco_df.drop(columns="churn").iloc[:300]).reset_index(drop=True)
    y = (telco_df["churn"].iloc[:300] == model.classes[1]).astype(int).to_numpy()
    metric = get_metric("log_loss", Task.BINARY)
    fast = _permutation(model, X, y, metric, n_repeats=1, seed=3).set_index("column")
    rng = np.random.default_rng(3)
    baseline = metric.loss(y, _predict_design(model, _prepare(model, X)))
    for col in model.feature_names:
        perm = rng.permutation(len(X))
        shuffled = X.copy()
        shuffled[col] = X[col].to_numpy()[perm]
        slow = metric.loss(y, model.predict_proba(shuffled)) - baseline
        assert fast.loc[col, "importance"] == pytest.approx(slow, abs=1e-9), col


def test_text_columns_get_their_heaviest_ngrams():
    df = load_suite("trump_tweet_source", nrows=800)
    run = _train(df, "source", ["linear", "lightgbm"], 2)
    g = global_explanation(run, df.drop(columns="source"), df["source"], max_rows=300)
    assert "text" in g.text_ngrams
    grams = g.text_ngrams["text"]
    assert {"ngram", "weight"} <= set(grams.columns) and len(grams) > 0
    assert grams["ngram"].map(len).min() > 0
    assert "text" not in g.dependence  # a dependence plot of raw text says nothing
    json.dumps(g.to_dict())


def test_a_time_limit_explains_fewer_rows_and_says_so(telco_df):
    """A kNN member is explained by sampling permutations, about a thousand times the cost
    of a tree: the report's explanations must stop at their time limit (issue 14: a 30,000-
    row multiclass report spent 306 s here) and say what they left out."""
    run = _train(telco_df, "churn", ["knn"], 1)
    X, y = telco_df.drop(columns="churn"), telco_df["churn"]
    full = global_explanation(run, X, y, max_rows=200, seed=0)
    assert full.notes == []
    assert len(next(iter(full.dependence.values()))) == 200
    limited = global_explanation(run, X, y, max_rows=200, seed=0, time_limit=1e-3)
    explained = len(next(iter(limited.dependence.values())))
    assert explained == 2  # the pilot rows only
    assert len(limited.permutation) == 1 < len(full.permutation)  # the top column only
    assert any("2 of 200 sampled rows" in n for n in limited.notes)
    assert any("explanation budget" in n for n in limited.notes)
    # The column the limited run shuffled is the one with the largest contributions.
    assert limited.permutation["column"].iloc[0] == limited.importance["column"].iloc[0]


def test_permutation_importance_stops_at_its_budget_when_predictions_slow_down(
        telco_df, telco_ensemble, monkeypatch):
    """The first prediction only estimates the cost of the rest: on a machine that gets
    busy meanwhile the clock must stop the columns (hpc_jobs: 6 columns took 20 s of a
    1.4 s budget). Here every prediction after the baseline takes 0.2 s."""
    import time

    from mlwright.evaluate.explain import global_ as module

    ens = telco_ensemble.model
    X = ens._frame(telco_df.drop(columns="churn").iloc[:200]).reset_index(drop=True)
    y_codes = (telco_df["churn"].iloc[:200] == ens.classes[1]).astype(int).to_numpy()
    calls = {"n": 0}

    def slower(ens_: object, prepared: object) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] > 1:
            time.sleep(0.2)
        return _predict_design(ens_, prepared)

    monkeypatch.setattr(module, "_predict_design", slower)
    metric = get_metric("log_loss", Task.BINARY)
    started = time.perf_counter()
    frame = _permutation(ens, X, y_codes, metric, 2, 0, budget=1.0)
    spent = time.perf_counter() - started
    # Each column costs 2 x 0.2 s: two columns fit in a second, a third would cross it.
    assert 1 <= len(frame) <= 3 < len(ens.feature_names)
    assert spent < 1.0 + 2 * 0.2 + 0.5
