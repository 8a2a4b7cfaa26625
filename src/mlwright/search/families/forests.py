"""Bagged trees: random forest and extra trees (scikit-learn; missing values supported).

A forest cannot be interrupted mid-fit, so it grows in warm-started batches of trees and stops
at the trial's deadline with the trees it has (the same trees a single fit would grow, as
scikit-learn draws the seeds of later trees after those of earlier ones).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from mlwright.data.kinds import Task
from mlwright.search._base import FitContext, FitInfo, ModelFamily, register_family
from mlwright.search.duplicate_rows import no_bags_of_counts

#: Batches per full forest: a look at the deadline every sixth of the fit.
BATCHES = 6


class _Forest(ModelFamily):
    relative_cost = 2.0
    weighted = True
    _classifier: str
    _regressor: str

    def why_unsupported(self, ctx: FitContext) -> str | None:
        # Sparse TF-IDF blocks make forests slow and weak; boosting and linear cover text.
        return ("sparse input (TF-IDF text): slow and weak there; boosting and linear models "
                "read the text") if ctx.sparse else None

    def default_configs(self, ctx: FitContext) -> list[dict[str, Any]]:
        p = f"{self.name}__"
        return [{f"{p}max_features": 0.5 if ctx.task is Task.REGRESSION else 0.3,
                 f"{p}min_samples_leaf": 2}]

    def suggest(self, trial: Any, ctx: FitContext) -> dict[str, Any]:
        p = f"{self.name}__"
        return {
            "max_features": trial.suggest_float(f"{p}max_features", 0.1, 1.0),
            "min_samples_leaf": trial.suggest_int(f"{p}min_samples_leaf", 1, 20, log=True),
        }

    def build(self, params: dict[str, Any], ctx: FitContext) -> Any:
        from sklearn import ensemble

        name = self._regressor if ctx.task is Task.REGRESSION else self._classifier
        extra = {} if ctx.task is Task.REGRESSION else {"class_weight": ctx.class_weight}
        # Fewer trees on large tables keep a default fit within a few seconds on 2 cores.
        params = dict(params)
        n_trees = params.pop("n_estimators", 300 if ctx.n_rows <= 20_000 else 150)
        return getattr(ensemble, name)(n_estimators=n_trees, n_jobs=ctx.n_jobs,
                                       random_state=ctx.seed, **extra, **params)

    def fit(self, estimator: Any, X: Any, y: np.ndarray, ctx: FitContext, *,
            X_val: Any = None, y_val: np.ndarray | None = None,
            deadline: float | None = None, sample_weight: np.ndarray | None = None,
            val_weight: np.ndarray | None = None) -> FitInfo:
        total = int(estimator.n_estimators)
        no_bags_of_counts(estimator, sample_weight)
        if deadline is None:
            estimator.fit(X, y, sample_weight=sample_weight)
            return FitInfo(n_iter=total)
        # Batches a multiple of the threads, so that no thread idles within one.
        threads = max(1, int(estimator.n_jobs or 1))
        step = max(threads, -(-total // BATCHES // threads) * threads)
        # Past the deadline already: one tree per thread, the smallest forest there is.
        grown = min(threads if time.monotonic() >= deadline else step, total)
        estimator.set_params(warm_start=True, n_estimators=grown)
        try:
            estimator.fit(X, y, sample_weight=sample_weight)
            while grown < total and time.monotonic() < deadline:
                grown = min(total, grown + step)
                estimator.set_params(n_estimators=grown)
                estimator.fit(X, y, sample_weight=sample_weight)
        finally:
            # n_estimators says how many trees the model has; a clone starts cold.
            estimator.set_params(warm_start=False, n_estimators=len(estimator.estimators_))
        return FitInfo(n_iter=len(estimator.estimators_),
                       extra={"stopped_at_deadline": grown < total})

    def refit_params(self, params: dict[str, Any], infos: list[FitInfo],
                     ctx: FitContext) -> dict[str, Any]:
        # As many trees as the folds reached: the refit costs what the search measured.
        trees = [i.n_iter for i in infos if i.n_iter]
        return {**params, "n_estimators": min(trees)} if trees else params


@register_family
class RandomForestFamily(_Forest):
    name = "random_forest"
    priority = 60
    _classifier = "RandomForestClassifier"
    _regressor = "RandomForestRegressor"


@register_family
class ExtraTreesFamily(_Forest):
    name = "extra_trees"
    priority = 50
    _classifier = "ExtraTreesClassifier"
    _regressor = "ExtraTreesRegressor"
