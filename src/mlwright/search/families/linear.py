"""Linear models: logistic regression for classes, ridge for numbers (on scaled, one-hot,
target-encoded and TF-IDF features)."""

from __future__ import annotations

from typing import Any

from mlwright.data.kinds import Task
from mlwright.search._base import FitContext, ModelFamily, register_family


@register_family
class LinearFamily(ModelFamily):
    name = "linear"
    prep_style = "linear"
    relative_cost = 0.3
    priority = 10

    def default_configs(self, ctx: FitContext) -> list[dict[str, Any]]:
        if ctx.task is Task.REGRESSION:
            return [{"linear__alpha": 10.0}]
        return [{"linear__C": 1.0}]

    def suggest(self, trial: Any, ctx: FitContext) -> dict[str, Any]:
        if ctx.task is Task.REGRESSION:
            return {"alpha": trial.suggest_float("linear__alpha", 1e-3, 1e3, log=True)}
        return {"C": trial.suggest_float("linear__C", 1e-3, 1e2, log=True)}

    def build(self, params: dict[str, Any], ctx: FitContext) -> Any:
        from sklearn.linear_model import LogisticRegression, Ridge

        if ctx.task is Task.REGRESSION:
            return Ridge(**params)
        return LogisticRegression(max_iter=2000, class_weight=ctx.class_weight, **params)
