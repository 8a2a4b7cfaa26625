"""Families that cannot be interrupted mid-fit still stop at a trial's deadline.

No timing is asserted (speed is measured in benchmarks/): a deadline already in the past
must stop a fit after its first chunk, and a deadline far away must not change the model.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_info

import mlwright as mw
from mlwright.data.kinds import Task, infer_kinds
from mlwright.prep import build_preprocessor, plan_columns
from mlwright.search._base import FitContext, FitInfo
from mlwright.search.families.boosting import HGB_CHUNK, HGB_FIRST, HistGradientBoostingFamily
from mlwright.search.families.forests import RandomForestFamily
from mlwright.search.families.linear import CHUNK, MAX_ITER, LinearFamily

PAST = 0.0  # a time.monotonic() deadline that has always passed


def _prepared(df, target, style):
    X = df.drop(columns=target)
    classes = sorted(df[target].unique())
    y = df[target].map({c: i for i, c in enumerate(classes)}).to_numpy()
    task = "binary" if len(classes) == 2 else "multiclass"
    Xt = build_preprocessor(plan_columns(infer_kinds(X)), style, task=task).fit_transform(X, y)
    ctx = FitContext(task=Task(task), n_classes=len(classes), n_rows=len(y),
                     n_features=Xt.shape[1], sparse=sp.issparse(Xt), has_text=True)
    return Xt, y, ctx


def test_logistic_regression_on_tfidf_is_capped_and_stops_at_the_deadline(trump):
    Xt, y, ctx = _prepared(trump, "source", "linear")
    assert ctx.sparse and ctx.task is Task.MULTICLASS
    family = LinearFamily()
    est = family.build({"C": 1.0}, ctx)
    # Newton-CG with a cap on its steps, not L-BFGS's 2,000 iterations on 30k columns.
    assert est.solver == "newton-cg" and est.max_iter == MAX_ITER["newton-cg"] <= 100

    free = family.fit(family.build({"C": 1.0}, ctx), Xt, y, ctx,
                      deadline=time.monotonic() + 3600)
    assert free.n_iter is not None and free.n_iter > CHUNK["newton-cg"]
    assert free.extra["stopped_at_deadline"] is False

    info = family.fit(est, Xt, y, ctx, deadline=PAST)
    assert info.n_iter == CHUNK["newton-cg"] and info.extra["stopped_at_deadline"] is True
    # A model cut short still predicts, and the estimator's parameters are as built.
    proba = est.predict_proba(Xt[:5])
    assert proba.shape == (5, 4) and np.allclose(proba.sum(axis=1), 1.0)
    assert est.max_iter == MAX_ITER["newton-cg"] and est.warm_start is False

    # The refit on all rows gets a cap near the folds' steps, so it costs what they cost.
    params = family.refit_params({"C": 1.0}, [free, FitInfo(n_iter=3)], ctx)
    assert params["max_iter"] == int(free.n_iter * 1.5) + 2 < MAX_ITER["newton-cg"]
    assert family.build(params, ctx).max_iter == params["max_iter"]


def test_dense_classification_keeps_lbfgs_in_longer_chunks(telco):
    Xt, y, ctx = _prepared(telco, "churn", "linear")
    assert not ctx.sparse
    family = LinearFamily()
    est = family.build({"C": 1.0}, ctx)
    assert est.solver == "lbfgs"
    info = family.fit(est, Xt, y, ctx, deadline=PAST)
    # One chunk at most (it converges within it on this small table), then predictions.
    assert info.n_iter is not None and 0 < info.n_iter <= CHUNK["lbfgs"]
    assert est.predict_proba(Xt[:3]).shape == (3, 2)


def test_forest_stops_after_one_batch_at_the_deadline_and_is_unchanged_otherwise(telco):
    Xt, y, ctx = _prepared(telco, "churn", "tree")
    family = RandomForestFamily()
    params = {"max_features": 0.5, "min_samples_leaf": 2, "n_estimators": 60}

    cut = family.build(params, ctx)
    info = family.fit(cut, Xt, y, ctx, deadline=PAST)
    # A deadline already past: one tree per thread (ctx.n_jobs is 1).
    assert info.n_iter == len(cut.estimators_) == 1 and info.extra["stopped_at_deadline"]
    assert cut.n_estimators == 1 and cut.warm_start is False  # the params say what it has

    # Grown in batches without hitting the deadline: the very trees of a single fit.
    batched, single = family.build(params, ctx), family.build(params, ctx)
    family.fit(batched, Xt, y, ctx, deadline=time.monotonic() + 3600)
    family.fit(single, Xt, y, ctx)
    assert len(batched.estimators_) == 60
    np.testing.assert_allclose(batched.predict_proba(Xt), single.predict_proba(Xt))

    assert family.refit_params(params, [info, FitInfo(n_iter=60)], ctx)["n_estimators"] == 1


def test_hist_gradient_boosting_stops_at_the_deadline(telco):
    Xt, y, ctx = _prepared(telco, "churn", "tree")
    family = HistGradientBoostingFamily()
    # A slow learner that early stopping does not end within one chunk of rounds.
    params = {"learning_rate": 0.01, "max_leaf_nodes": 8, "min_samples_leaf": 20,
              "l2_regularization": 1.0}
    chunked, single = family.build(dict(params), ctx), family.build(dict(params), ctx)
    free = family.fit(chunked, Xt, y, ctx, deadline=time.monotonic() + 3600)
    assert free.n_iter is not None and free.n_iter > HGB_CHUNK
    # Chunks that end before the deadline grow the very model a single fit grows.
    family.fit(single, Xt, y, ctx)
    assert chunked.n_iter_ == single.n_iter_
    np.testing.assert_allclose(chunked.predict_proba(Xt), single.predict_proba(Xt))

    est = family.build(dict(params), ctx)
    info = family.fit(est, Xt, y, ctx, deadline=PAST)
    assert info.n_iter == est.n_iter_ == HGB_FIRST  # one small chunk, not HGB_CHUNK rounds
    assert est.max_iter == 1000 and est.warm_start is False


@pytest.mark.parametrize("cv", ["holdout", 3])
def test_the_search_runs_blas_single_threaded_and_restores_it(trump, cv):
    before = {i["filepath"]: i["num_threads"] for i in threadpool_info()
              if i["user_api"] == "blas"}
    seen: list[set[int]] = []

    def on_trial(rec, search):
        seen.append({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})

    result = mw.train(trump, "source", time_budget=120, n_trials=1, families=["linear"],
                      cv=cv, on_trial=on_trial)
    assert seen == [{1}]
    after = {i["filepath"]: i["num_threads"] for i in threadpool_info()
             if i["user_api"] == "blas"}
    assert after == before
    member = result.model.members[0]["estimator"]
    assert member.solver == "newton-cg"


def test_hist_gradient_boosting_fits_with_the_folds_threads_only(telco):
    """HGB has no n_jobs; a fold's fit must not take every core through OpenMP (parallel
    folds would spin at OpenMP barriers), and the limit ends with the fit."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    seen: list[int] = []

    class Recording(HistGradientBoostingClassifier):
        def fit(self, X, y, sample_weight=None):
            seen.append(_openmp_effective_n_threads())
            return super().fit(X, y, sample_weight=sample_weight)

    Xt, y, ctx = _prepared(telco, "churn", "tree")
    family = HistGradientBoostingFamily()
    before = _openmp_effective_n_threads()
    for deadline in (None, PAST):
        est = Recording(max_iter=20, random_state=0)
        family.fit(est, Xt, y, ctx, deadline=deadline)  # ctx.n_jobs is 1
    assert seen and set(seen) == {1}
    assert _openmp_effective_n_threads() == before


def test_xgboost_cut_by_the_deadline_reports_the_rounds_it_has(telco):
    from mlwright.search.families.boosting import MAX_ROUNDS, XGBoostFamily

    Xt, y, ctx = _prepared(telco, "churn", "tree")
    family = XGBoostFamily()
    est = family.build({"learning_rate": 0.05}, ctx)
    # Stopped after its first round, before early stopping recorded a best iteration.
    info = family.fit(est, Xt[:4000], y[:4000], ctx, X_val=Xt[4000:], y_val=y[4000:],
                      deadline=PAST)
    assert info.n_iter == est.get_booster().num_boosted_rounds() < MAX_ROUNDS
    # The refit grows about as many rounds, not MAX_ROUNDS x 1.1.
    assert family.refit_params({}, [info], ctx)["n_estimators"] <= 10


def test_mlp_stops_at_the_deadline_after_an_epoch_and_is_unchanged_otherwise(telco):
    """scikit-learn's MLP has no callbacks: the family looks at the deadline where the MLP
    looks at its validation score, after each epoch (a late MLP rung that ran to its end
    took 6.7 s past a 5 s budget on a busy machine)."""
    from sklearn.neural_network import MLPClassifier

    from mlwright.search.families.neural import MLPFamily

    # The hook the family relies on (a scikit-learn upgrade that drops it fails here).
    assert callable(getattr(MLPClassifier, "_update_no_improvement_count", None))
    Xt, y, ctx = _prepared(telco.head(1500), "churn", "linear")
    family = MLPFamily()
    params = {"width": 32, "depth": 1, "alpha": 1e-3, "learning_rate_init": 1e-3}

    cut = family.build(dict(params), ctx)
    info = family.fit(cut, Xt, y, ctx, deadline=PAST)
    assert info.n_iter == cut.n_iter_ == 1 and info.extra["stopped_at_deadline"] is True
    assert cut.predict_proba(Xt[:3]).shape == (3, 2)
    # Nothing of the look is left on the model (it is pickled with the ensemble).
    assert "_update_no_improvement_count" not in vars(cut)

    # A deadline far away: the very model of a fit without one.
    timed, free = family.build(dict(params), ctx), family.build(dict(params), ctx)
    timed_info = family.fit(timed, Xt, y, ctx, deadline=time.monotonic() + 3600)
    family.fit(free, Xt, y, ctx)
    assert timed_info.extra["stopped_at_deadline"] is False and timed.n_iter_ > 1
    assert timed.n_iter_ == free.n_iter_
    np.testing.assert_array_equal(timed.predict_proba(Xt), free.predict_proba(Xt))
