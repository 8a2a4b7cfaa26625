"""Bagged trees: random forest and extra trees (scikit-learn; missing values supported)."""

from __future__ import annotations

from typing import Any

from mlwright.data.kinds import Task
from mlwright.search._base import FitContext, ModelFamily, register_family


class _Forest(ModelFamily):
    relative_cost = 2.0
    _classifier: str
    _regressor: str

    def supports(self, ctx: FitContext) -> bool:
        # Sparse TF-IDF blocks make forests slow and weak; boosting and linear cover text.
        return not ctx.sparse

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
        n_trees = 300 if ctx.n_rows <= 20_000 else 150
        return getattr(ensemble, name)(n_estimators=n_trees, n_jobs=ctx.n_jobs,
                                       random_state=ctx.seed, **extra, **params)


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
