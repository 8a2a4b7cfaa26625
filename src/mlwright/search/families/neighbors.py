"""k-nearest neighbours on scaled features (small, dense problems only)."""

from __future__ import annotations

from typing import Any

from mlwright.data.kinds import Task
from mlwright.search._base import FitContext, ModelFamily, register_family


@register_family
class KNNFamily(ModelFamily):
    name = "knn"
    prep_style = "linear"
    relative_cost = 0.5
    priority = 90
    stops_at_deadline = False

    def why_unsupported(self, ctx: FitContext) -> str | None:
        # Distances lose meaning in wide or sparse spaces and prediction cost grows with rows.
        if ctx.sparse:
            return "sparse input (TF-IDF text): distances lose their meaning"
        if ctx.n_rows > 50_000:
            return f"{ctx.n_rows:,} rows, over 50,000: each prediction would scan them all"
        if ctx.n_features > 300:
            return f"{ctx.n_features} features, over 300: distances lose their meaning"
        return None

    def default_configs(self, ctx: FitContext) -> list[dict[str, Any]]:
        return [{"knn__n_neighbors": 25}]

    def suggest(self, trial: Any, ctx: FitContext) -> dict[str, Any]:
        return {"n_neighbors": trial.suggest_int("knn__n_neighbors", 3, 100, log=True)}

    def build(self, params: dict[str, Any], ctx: FitContext) -> Any:
        from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

        cls = KNeighborsRegressor if ctx.task is Task.REGRESSION else KNeighborsClassifier
        return cls(weights="distance", n_jobs=ctx.n_jobs, **params)
