"""A multi-layer perceptron (scikit-learn) with early stopping on an inner validation split,
stopped at its deadline between two epochs."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from mlwright.data.kinds import Task
from mlwright.search._base import FitContext, FitInfo, ModelFamily, register_family


@register_family
class MLPFamily(ModelFamily):
    name = "mlp"
    prep_style = "linear"
    relative_cost = 3.0
    priority = 70
    # Its fit stops at the deadline only between epochs, and an MLP cut after a few epochs
    # on all rows is little use: its cost is measured on rungs of rows (decision 0032).
    stops_at_deadline = False

    def why_unsupported(self, ctx: FitContext) -> str | None:
        # scikit-learn's MLP cannot be stopped mid-fit and crawls on wide sparse input
        # (93 s for one trial on 15k tweets x 48k TF-IDF columns): dense, moderate widths only.
        if ctx.sparse:
            return "sparse input (TF-IDF text): one trial took 93 s on 15k tweets"
        if ctx.n_features > 1000:
            return f"{ctx.n_features} features, over 1,000"
        if ctx.n_rows > 200_000:
            return f"{ctx.n_rows:,} rows, over 200,000"
        return None

    def cost(self, ctx: FitContext) -> float:
        # It cannot stop at a deadline, so it must not be underestimated: measured 18x a
        # LightGBM fold on ames_housing (282 features), about 6x on telco (51 features).
        return self.relative_cost * (1.0 + ctx.n_features / 50.0)

    def default_configs(self, ctx: FitContext) -> list[dict[str, Any]]:
        return [{"mlp__width": 128, "mlp__depth": 2, "mlp__alpha": 1e-3,
                 "mlp__learning_rate_init": 1e-3}]

    def suggest(self, trial: Any, ctx: FitContext) -> dict[str, Any]:
        return {
            "width": trial.suggest_int("mlp__width", 16, 256, log=True),
            "depth": trial.suggest_int("mlp__depth", 1, 3),
            "alpha": trial.suggest_float("mlp__alpha", 1e-6, 1e-1, log=True),
            "learning_rate_init": trial.suggest_float("mlp__learning_rate_init", 1e-4, 1e-2,
                                                      log=True),
        }

    def build(self, params: dict[str, Any], ctx: FitContext) -> Any:
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        params = dict(params)
        layers = (params.pop("width"),) * params.pop("depth")
        cls = MLPRegressor if ctx.task is Task.REGRESSION else MLPClassifier
        return cls(hidden_layer_sizes=layers, early_stopping=True, n_iter_no_change=8,
                   max_iter=150, random_state=ctx.seed, **params)

    def fit(self, estimator: Any, X: Any, y: np.ndarray, ctx: FitContext, *,
            X_val: Any = None, y_val: np.ndarray | None = None,
            deadline: float | None = None) -> FitInfo:
        """Fit; past ``deadline``, stop at the end of the epoch (keeping the best weights on
        the inner validation split, as early stopping does). A late rung (the run's
        deadline already past) learns for one epoch; the rung on ames_housing that ran to
        its end took 6.7 s past a 5 s budget on a busy machine (12.1 s in all)."""
        if deadline is None:
            estimator.fit(X, y)
            return FitInfo(n_iter=int(estimator.n_iter_))
        # scikit-learn's MLP has no callbacks; the one look it takes after every epoch is
        # whether the validation score stopped improving. This instance's look also says
        # "stop" once the deadline has passed (tests/search/test_deadlines.py checks that
        # the hook is there and that a fit before its deadline is the very same model).
        epoch_end = type(estimator)._update_no_improvement_count
        stopped = False

        def look(*args: Any) -> None:
            nonlocal stopped
            epoch_end(estimator, *args)
            if time.monotonic() > deadline:
                stopped = True
                estimator._no_improvement_count = estimator.n_iter_no_change + 1

        estimator._update_no_improvement_count = look
        try:
            estimator.fit(X, y)
        finally:
            del estimator._update_no_improvement_count  # the pickled model holds no closure
        return FitInfo(n_iter=int(estimator.n_iter_), extra={"stopped_at_deadline": stopped})
