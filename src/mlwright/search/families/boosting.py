"""Gradient-boosted trees: LightGBM, XGBoost, CatBoost and scikit-learn's HistGradientBoosting.

All stop early on the validation fold and against the trial's deadline; the number of
iterations they reached sets the iterations of the final refit on all rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from mlwright.data.kinds import Task
from mlwright.search._base import FitContext, FitInfo, ModelFamily, register_family
from mlwright.search.duplicate_rows import no_bags_of_counts

MAX_ROUNDS = 3000
#: Leaves a multiclass boosted model may reserve in all (rounds x a tree per class x the
#: leaves a tree may have: LightGBM's ``num_leaves``, XGBoost's 2 ** ``max_depth``): what a
#: binary LightGBM model of the search space may (MAX_ROUNDS x 256). Memory and prediction
#: time grow with it: LightGBM reserves every tree's arrays for ``num_leaves`` while it
#: trains and copies the model through its text form at the end, and military's (4 classes)
#: slow learners ran all 3,000 rounds, 12,000 trees, a LightGBM fit's end 400 MB above the
#: search's memory and an XGBoost fit's (depth 10) 200 MB.
MAX_LEAVES = MAX_ROUNDS * 256
#: HistGradientBoosting has no callbacks to stop it: it grows in warm-started chunks of
#: rounds, the first small (on a loaded machine 100 rounds of a multiclass model can take
#: longer than a whole 5 s budget), each next one doubled but never longer than the time left
#: at the rounds' measured pace, and at most HGB_CHUNK rounds.
HGB_FIRST = 10
HGB_CHUNK = 100


def _patience(learning_rate: float) -> int:
    # Slow learners plateau longer before improving again.
    return int(np.clip(2.5 / learning_rate, 30, 200))


def _refit_rounds(infos: list[FitInfo], fallback: int) -> int:
    iters = [i.n_iter for i in infos if i.n_iter]
    # A final model sees all rows (about 1/(k-1) more than a fold): a few more rounds.
    return max(10, int(np.mean(iters) * 1.1)) if iters else fallback


def _common_space(trial: Any, prefix: str) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float(f"{prefix}learning_rate", 0.01, 0.3, log=True),
        "subsample": trial.suggest_float(f"{prefix}subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float(f"{prefix}colsample_bytree", 0.3, 1.0),
        "reg_alpha": trial.suggest_float(f"{prefix}reg_alpha", 1e-8, 10.0, log=True),
        "reg_lambda": trial.suggest_float(f"{prefix}reg_lambda", 1e-8, 10.0, log=True),
    }


@register_family
class LightGBMFamily(ModelFamily):
    name = "lightgbm"
    weighted = True
    requires = "lightgbm"
    relative_cost = 1.0
    priority = 0

    def default_configs(self, ctx: FitContext) -> list[dict[str, Any]]:
        p = "lightgbm__"
        base = {f"{p}learning_rate": 0.05, f"{p}num_leaves": 31, f"{p}min_child_samples": 20,
                f"{p}subsample": 0.8, f"{p}colsample_bytree": 0.8, f"{p}reg_alpha": 1e-8,
                f"{p}reg_lambda": 1.0, f"{p}cat_smooth": 10.0}
        small = {**base, f"{p}learning_rate": 0.03, f"{p}num_leaves": 15,
                 f"{p}min_child_samples": 10, f"{p}colsample_bytree": 0.5,
                 f"{p}reg_lambda": 3.0}
        wide = {**base, f"{p}num_leaves": 128, f"{p}min_child_samples": 40,
                f"{p}colsample_bytree": 0.6, f"{p}reg_lambda": 5.0, f"{p}cat_smooth": 30.0}
        return [base, small, wide]

    def suggest(self, trial: Any, ctx: FitContext) -> dict[str, Any]:
        p = "lightgbm__"
        return {
            **_common_space(trial, p),
            "num_leaves": trial.suggest_int(f"{p}num_leaves", 4, 256, log=True),
            "min_child_samples": trial.suggest_int(f"{p}min_child_samples", 2, 100, log=True),
            "cat_smooth": trial.suggest_float(f"{p}cat_smooth", 1.0, 100.0, log=True),
        }

    def build(self, params: dict[str, Any], ctx: FitContext) -> Any:
        import lightgbm as lgb

        cls = lgb.LGBMRegressor if ctx.task is Task.REGRESSION else lgb.LGBMClassifier
        return cls(
            n_estimators=params.get("n_estimators", MAX_ROUNDS), subsample_freq=1,
            random_state=ctx.seed, n_jobs=ctx.n_jobs, verbose=-1,
            class_weight=ctx.class_weight, max_cat_to_onehot=8, min_data_per_group=20,
            **{k: v for k, v in params.items() if k != "n_estimators"},
        )

    def fit(self, estimator: Any, X: Any, y: np.ndarray, ctx: FitContext, *,
            X_val: Any = None, y_val: np.ndarray | None = None,
            deadline: float | None = None, sample_weight: np.ndarray | None = None,
            val_weight: np.ndarray | None = None) -> FitInfo:
        import lightgbm as lgb

        callbacks: list[Callable[[Any], None]] = []
        kwargs: dict[str, Any] = {}
        if X_val is not None:
            kwargs["eval_set"] = [(X_val, y_val)]
            if val_weight is not None:
                kwargs["eval_sample_weight"] = [val_weight]
            callbacks.append(lgb.early_stopping(_patience(estimator.learning_rate),
                                                first_metric_only=True, verbose=False))
        if deadline is not None:
            def _stop_at_deadline(env: Any) -> None:
                if time.monotonic() > deadline:
                    raise lgb.callback.EarlyStopException(env.iteration,
                                                           env.evaluation_result_list)
            callbacks.append(_stop_at_deadline)
        if ctx.n_ordinal:
            kwargs["categorical_feature"] = list(range(ctx.n_ordinal))
        no_bags_of_counts(estimator, sample_weight)
        leaves = leaves_possible(estimator, X.shape[0])
        estimator.set_params(num_leaves=leaves,
                             n_estimators=rounds_possible(estimator, leaves, ctx))
        estimator.fit(X, y, sample_weight=sample_weight, callbacks=callbacks, **kwargs)
        best = getattr(estimator, "best_iteration_", None) or estimator.n_estimators
        return FitInfo(n_iter=int(best))

    def refit_params(self, params: dict[str, Any], infos: list[FitInfo],
                     ctx: FitContext) -> dict[str, Any]:
        return {**params, "n_estimators": _refit_rounds(infos, 500)}


def leaves_possible(estimator: Any, n_rows: int) -> int:
    """``num_leaves`` capped at the leaves ``n_rows`` rows can fill.

    Every LightGBM leaf holds at least ``min_child_samples`` rows (counted, not weighted),
    so no tree of ``n_rows`` rows has more than ``n_rows // min_child_samples`` leaves, and
    a lower cap grows the same trees. It matters for memory: LightGBM sizes each tree's
    arrays by ``num_leaves`` while it trains. Military's 1,611 distinct rows (weighted by
    their counts, 4 classes, 3,000 rounds, ``min_child_samples`` 40) peaked 347 MB above
    the start with ``num_leaves`` 256 and 142 MB with the 40 they can fill, predicting the
    same."""
    params = estimator.get_params()
    cap = max(2, n_rows // max(1, int(params.get("min_child_samples") or 20)))
    return int(min(params["num_leaves"], cap))


def rounds_possible(estimator: Any, leaves: int, ctx: FitContext) -> int:
    """``n_estimators``, for a multiclass model (``n_classes`` trees a round) capped so that
    it reserves at most :data:`MAX_LEAVES` leaves, and never below 100 rounds."""
    rounds = int(estimator.get_params()["n_estimators"])
    if ctx.task is not Task.MULTICLASS:
        return rounds
    return min(rounds, max(100, MAX_LEAVES // (ctx.n_classes * max(2, leaves))))


class _XGBDeadline:
    """An xgboost TrainingCallback that stops training at a wall-clock deadline."""

    def __new__(cls, deadline: float) -> Any:
        import xgboost as xgb

        class _Callback(xgb.callback.TrainingCallback):
            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                return time.monotonic() > deadline

        return _Callback()


@register_family
class XGBoostFamily(ModelFamily):
    name = "xgboost"
    weighted = True
    requires = "xgboost"
    relative_cost = 1.5
    priority = 30

    def default_configs(self, ctx: FitContext) -> list[dict[str, Any]]:
        p = "xgboost__"
        return [{f"{p}learning_rate": 0.05, f"{p}max_depth": 6, f"{p}min_child_weight": 1.0,
                 f"{p}subsample": 0.8, f"{p}colsample_bytree": 0.8, f"{p}reg_alpha": 1e-8,
                 f"{p}reg_lambda": 1.0}]

    def suggest(self, trial: Any, ctx: FitContext) -> dict[str, Any]:
        p = "xgboost__"
        return {
            **_common_space(trial, p),
            "max_depth": trial.suggest_int(f"{p}max_depth", 2, 10),
            "min_child_weight": trial.suggest_float(f"{p}min_child_weight", 0.5, 20.0, log=True),
        }

    def build(self, params: dict[str, Any], ctx: FitContext) -> Any:
        import xgboost as xgb

        cls = xgb.XGBRegressor if ctx.task is Task.REGRESSION else xgb.XGBClassifier
        return cls(n_estimators=params.get("n_estimators", MAX_ROUNDS), tree_method="hist",
                   random_state=ctx.seed, n_jobs=ctx.n_jobs, verbosity=0,
                   **{k: v for k, v in params.items() if k != "n_estimators"})

    def fit(self, estimator: Any, X: Any, y: np.ndarray, ctx: FitContext, *,
            X_val: Any = None, y_val: np.ndarray | None = None,
            deadline: float | None = None, sample_weight: np.ndarray | None = None,
            val_weight: np.ndarray | None = None) -> FitInfo:
        callbacks = [_XGBDeadline(deadline)] if deadline is not None else None
        es = _patience(estimator.learning_rate) if X_val is not None else None
        no_bags_of_counts(estimator, sample_weight)
        depth = estimator.get_params().get("max_depth") or 6  # XGBoost's default
        estimator.set_params(early_stopping_rounds=es, callbacks=callbacks,
                             n_estimators=rounds_possible(estimator, 2 ** int(depth), ctx))
        try:
            if X_val is not None:
                estimator.fit(X, y, sample_weight=sample_weight, eval_set=[(X_val, y_val)],
                              sample_weight_eval_set=None if val_weight is None
                              else [val_weight], verbose=False)
            else:
                estimator.fit(X, y, sample_weight=sample_weight, verbose=False)
        finally:
            # Callbacks hold closures: keep them out of the pickled model.
            estimator.set_params(early_stopping_rounds=None, callbacks=None)
        best = getattr(estimator, "best_iteration", None) if X_val is not None else None
        # Stopped by the deadline before early stopping recorded a best: the rounds it has
        # (not n_estimators, which would have the refit grow 3,000 rounds).
        return FitInfo(n_iter=int(best) + 1 if best is not None
                       else int(estimator.get_booster().num_boosted_rounds()))

    def refit_params(self, params: dict[str, Any], infos: list[FitInfo],
                     ctx: FitContext) -> dict[str, Any]:
        return {**params, "n_estimators": _refit_rounds(infos, 500)}


#: Rows from which CatBoost one-hot encodes categories of up to 255 levels instead of
#: learning target statistics (CTRs) for them. CTRs cost memory in proportion to rows and
#: classes, and CatBoost's allocator keeps what it took: on 850k rows shaped like military's
#: (4 categorical columns of 2-11 levels, 4 classes) a process held 950 MB after a fit, 610 MB
#: one-hot. With that many rows a level has thousands of examples: one-hot splits lose little.
ONE_HOT_ROWS = 500_000
#: Rows up to which CatBoost gets an object array rather than a DataFrame (see ``_frame``).
_OBJECT_ROWS = 10_000


class CatBoostModel(BaseEstimator):
    """CatBoost on the ``tree`` style's output: the ordinal block becomes integer categories.

    CatBoost refuses float-coded categories, so this wrapper casts them; it is otherwise a
    thin scikit-learn estimator around CatBoostClassifier / CatBoostRegressor.
    """

    # Models pickled before the parameter existed read this default (get_params, clone).
    one_hot_max_size: int | None = None

    def __init__(self, task: Task = Task.BINARY, n_ordinal: int = 0, iterations: int = 1000,
                 learning_rate: float = 0.06, depth: int = 6, l2_leaf_reg: float = 3.0,
                 random_strength: float = 1.0, seed: int = 0, n_jobs: int = 1,
                 one_hot_max_size: int | None = None) -> None:
        self.task = task
        self.n_ordinal = n_ordinal
        self.iterations = iterations
        self.learning_rate = learning_rate
        self.depth = depth
        self.l2_leaf_reg = l2_leaf_reg
        self.random_strength = random_strength
        self.seed = seed
        self.n_jobs = n_jobs
        self.one_hot_max_size = one_hot_max_size  # None: CatBoost's own default

    def _frame(self, X: Any) -> Any:
        X = np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=float)
        n = self.n_ordinal
        if not n:
            return X
        codes = np.nan_to_num(X[:, :n], nan=-1.0).astype(np.int64)
        if len(X) <= _OBJECT_ROWS:
            # An object array with integer categories: CatBoost reads a few rows of it
            # without the cost of a DataFrame (about 4 ms per one-row call).
            out = X.astype(object)
            out[:, :n] = codes
            return out
        # Many rows: an object array holds a Python object per cell (military, 850k x 5:
        # 110 MB more at CatBoost's peak); the same values as columns, read identically.
        return pd.DataFrame({**{j: codes[:, j] for j in range(n)},
                             **{j: X[:, j] for j in range(n, X.shape[1])}}, copy=False)

    def fit(self, X: Any, y: np.ndarray, eval_set: Any = None, callbacks: Any = None,
            early_stopping_rounds: int | None = None,
            sample_weight: np.ndarray | None = None) -> CatBoostModel:
        """``eval_set``: (X, y) or (X, y, weights) pairs, as the boosters take them."""
        import catboost

        cls = (catboost.CatBoostRegressor if self.task == Task.REGRESSION.value
               else catboost.CatBoostClassifier)
        self.model_ = cls(iterations=self.iterations, learning_rate=self.learning_rate,
                          depth=self.depth, l2_leaf_reg=self.l2_leaf_reg,
                          random_strength=self.random_strength, random_seed=self.seed,
                          thread_count=self.n_jobs, verbose=False, allow_writing_files=False,
                          cat_features=list(range(self.n_ordinal)),
                          **({} if self.one_hot_max_size is None
                             else {"one_hot_max_size": self.one_hot_max_size}),
                          **({} if sample_weight is None else {"bootstrap_type": "No"}))
        val = [self._eval_pair(catboost, *v) for v in eval_set] if eval_set else None
        self.model_.fit(self._frame(X), y, sample_weight=sample_weight, eval_set=val,
                        callbacks=callbacks,
                        early_stopping_rounds=early_stopping_rounds, use_best_model=bool(val))
        if self.task != Task.REGRESSION.value:
            self.classes_ = np.asarray(self.model_.classes_)
        return self

    def _eval_pair(self, catboost: Any, X: Any, y: np.ndarray,
                   weight: np.ndarray | None = None) -> Any:
        if weight is None:
            return self._frame(X), y
        return catboost.Pool(self._frame(X), y, cat_features=list(range(self.n_ordinal)),
                             weight=weight)

    def predict(self, X: Any) -> np.ndarray:
        out = self.model_.predict(self._frame(X))
        return np.asarray(out).ravel()

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.model_.predict_proba(self._frame(X))


class _CatBoostDeadline:
    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def after_iteration(self, info: Any) -> bool:
        return time.monotonic() < self.deadline  # False stops training


@register_family
class CatBoostFamily(ModelFamily):
    name = "catboost"
    weighted = True
    requires = "catboost"
    relative_cost = 4.0
    priority = 20

    def why_unsupported(self, ctx: FitContext) -> str | None:
        return ("sparse input (TF-IDF text) would be made dense" if ctx.sparse else None)

    def cost(self, ctx: FitContext) -> float:
        # MultiClass boosting grows one set of leaf values per class on symmetric trees
        # (12x a LightGBM trial on hpc_jobs, 4 classes), and every categorical column adds
        # target statistics to compute (ames_housing, 39 of them: over 24 s for one trial).
        per_class = ctx.n_classes if ctx.task is Task.MULTICLASS else 1
        return self.relative_cost * per_class * (1.0 + ctx.n_ordinal / 10.0)

    def default_configs(self, ctx: FitContext) -> list[dict[str, Any]]:
        p = "catboost__"
        return [{f"{p}learning_rate": 0.08, f"{p}depth": 6, f"{p}l2_leaf_reg": 3.0,
                 f"{p}random_strength": 1.0}]

    def suggest(self, trial: Any, ctx: FitContext) -> dict[str, Any]:
        p = "catboost__"
        return {
            "learning_rate": trial.suggest_float(f"{p}learning_rate", 0.02, 0.3, log=True),
            "depth": trial.suggest_int(f"{p}depth", 3, 8),
            "l2_leaf_reg": trial.suggest_float(f"{p}l2_leaf_reg", 0.5, 30.0, log=True),
            "random_strength": trial.suggest_float(f"{p}random_strength", 0.1, 10.0, log=True),
        }

    def build(self, params: dict[str, Any], ctx: FitContext) -> Any:
        if ctx.n_ordinal and ctx.n_rows >= ONE_HOT_ROWS:
            params = {"one_hot_max_size": 255, **params}
        return CatBoostModel(task=ctx.task, n_ordinal=ctx.n_ordinal, seed=ctx.seed,
                             n_jobs=ctx.n_jobs, **{"iterations": MAX_ROUNDS, **params})

    def fit(self, estimator: Any, X: Any, y: np.ndarray, ctx: FitContext, *,
            X_val: Any = None, y_val: np.ndarray | None = None,
            deadline: float | None = None, sample_weight: np.ndarray | None = None,
            val_weight: np.ndarray | None = None) -> FitInfo:
        callbacks = [_CatBoostDeadline(deadline)] if deadline is not None else None
        if X_val is not None:
            estimator.fit(X, y, sample_weight=sample_weight,
                          eval_set=[(X_val, y_val, val_weight)], callbacks=callbacks,
                          early_stopping_rounds=_patience(estimator.learning_rate))
            return FitInfo(n_iter=int(estimator.model_.get_best_iteration() or 0) + 1)
        estimator.fit(X, y, sample_weight=sample_weight, callbacks=callbacks)
        return FitInfo(n_iter=estimator.iterations)

    def refit_params(self, params: dict[str, Any], infos: list[FitInfo],
                     ctx: FitContext) -> dict[str, Any]:
        return {**params, "iterations": _refit_rounds(infos, 500)}


@register_family
class HistGradientBoostingFamily(ModelFamily):
    name = "hist_gb"
    weighted = True
    relative_cost = 1.5
    priority = 80

    def why_unsupported(self, ctx: FitContext) -> str | None:
        return ("sparse input (TF-IDF text), which it does not take" if ctx.sparse else None)

    def default_configs(self, ctx: FitContext) -> list[dict[str, Any]]:
        # scikit-learn's own defaults (its l2 of 0 as the space's floor): every family gets
        # a default trial before any is tuned (issue 15).
        p = "hist_gb__"
        return [{f"{p}learning_rate": 0.1, f"{p}max_leaf_nodes": 31,
                 f"{p}min_samples_leaf": 20, f"{p}l2_regularization": 1e-6}]

    def suggest(self, trial: Any, ctx: FitContext) -> dict[str, Any]:
        p = "hist_gb__"
        return {
            "learning_rate": trial.suggest_float(f"{p}learning_rate", 0.02, 0.3, log=True),
            "max_leaf_nodes": trial.suggest_int(f"{p}max_leaf_nodes", 8, 128, log=True),
            "min_samples_leaf": trial.suggest_int(f"{p}min_samples_leaf", 5, 100, log=True),
            "l2_regularization": trial.suggest_float(f"{p}l2_regularization", 1e-6, 10.0,
                                                     log=True),
        }

    def build(self, params: dict[str, Any], ctx: FitContext) -> Any:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = (HistGradientBoostingRegressor if ctx.task is Task.REGRESSION
               else HistGradientBoostingClassifier)
        return cls(max_iter=params.pop("max_iter", 1000), early_stopping=True,
                   validation_fraction=0.1, n_iter_no_change=30, random_state=ctx.seed,
                   **params)

    def fit(self, estimator: Any, X: Any, y: np.ndarray, ctx: FitContext, *,
            X_val: Any = None, y_val: np.ndarray | None = None,
            deadline: float | None = None, sample_weight: np.ndarray | None = None,
            val_weight: np.ndarray | None = None) -> FitInfo:
        from threadpoolctl import threadpool_limits

        # HistGradientBoosting has no n_jobs: it takes every core through OpenMP. Two
        # parallel folds of two threads each on 2 busy cores spin at OpenMP's barriers
        # (10 rounds of a 4-class fold on hpc_jobs: 0.9-1.1 s, 0.27 s with one thread).
        # The limit is the calling thread's own (OpenMP keeps it per thread).
        with threadpool_limits(limits=max(1, ctx.n_jobs), user_api="openmp"):
            if sample_weight is not None and X_val is None:
                # A refit on grouped rows: its rounds come from the folds, and a 10% split
                # of the distinct rows would hold out whole groups.
                estimator.set_params(early_stopping=False)
            elif sample_weight is not None:
                # Early stopping on the fold's own validation rows: a 10% split of the
                # distinct rows would hold out whole groups (see duplicate_rows.no_bags_of_counts).
                return self._fit(estimator, X, y, deadline, sample_weight, X_val=X_val,
                                 y_val=y_val, sample_weight_val=val_weight)
            return self._fit(estimator, X, y, deadline, sample_weight)

    def _fit(self, estimator: Any, X: Any, y: np.ndarray, deadline: float | None,
             sample_weight: np.ndarray | None, **val: Any) -> FitInfo:
        if deadline is None:
            estimator.fit(X, y, sample_weight=sample_weight, **val)
            return FitInfo(n_iter=int(estimator.n_iter_))
        # No callbacks: warm-started chunks of rounds, with a look at the deadline between.
        cap = int(estimator.max_iter)
        step = min(HGB_FIRST, cap)
        start = time.monotonic()
        estimator.set_params(warm_start=True, max_iter=step)
        try:
            estimator.fit(X, y, sample_weight=sample_weight, **val)
            # Fewer rounds than allowed: early stopping ended it.
            while estimator.n_iter_ == estimator.max_iter < cap:
                now = time.monotonic()
                if now >= deadline:
                    break
                per_round = (now - start) / estimator.n_iter_
                step = int(min(2 * step, HGB_CHUNK, max(1, (deadline - now) / per_round)))
                estimator.set_params(max_iter=min(cap, estimator.max_iter + step))
                estimator.fit(X, y, sample_weight=sample_weight, **val)
        finally:
            estimator.set_params(warm_start=False, max_iter=cap)
        return FitInfo(n_iter=int(estimator.n_iter_))

    def refit_params(self, params: dict[str, Any], infos: list[FitInfo],
                     ctx: FitContext) -> dict[str, Any]:
        return {**params, "max_iter": _refit_rounds(infos, 300)}
