"""scikit-learn estimators over the search: ``AutoClassifier`` and ``AutoRegressor``.

They follow the estimator contract (``__init__`` only stores, ``fit`` searches), so they
clone, nest in pipelines and cross-validate like any other estimator.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from mlwright.data.kinds import Task

__all__ = ["AutoClassifier", "AutoRegressor"]


def _as_frame(X: Any) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    array = np.asarray(X)
    if array.ndim != 2:
        raise ValueError(f"Expected a 2-D table of features, got an array of shape "
                         f"{array.shape}.")
    return pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])


class _AutoBase(BaseEstimator):
    _task: Task | None = None

    def __init__(self, time_budget: float = 60.0, metric: str | None = None,
                 n_trials: int | None = None, search: str = "bayes",
                 families: list[str] | None = None, cv: int | str = "auto", seed: int = 0,
                 n_jobs: int = -1) -> None:
        self.time_budget = time_budget
        self.metric = metric
        self.n_trials = n_trials
        self.search = search
        self.families = families
        self.cv = cv
        self.seed = seed
        self.n_jobs = n_jobs

    def _search_kwargs(self) -> dict[str, Any]:
        return {"time_budget": self.time_budget, "metric": self.metric,
                "n_trials": self.n_trials, "search": self.search, "families": self.families,
                "cv": self.cv, "seed": self.seed, "n_jobs": self.n_jobs}

    def fit(self, X: Any, y: Any, groups: Any = None) -> _AutoBase:
        from mlwright.search.engine import run_search

        X = _as_frame(X)
        y = pd.Series(np.asarray(y), name="target")
        task = self._task
        if task is not Task.REGRESSION:
            task = Task.BINARY if pd.Series(y).nunique() == 2 else Task.MULTICLASS
        self.result_ = run_search(X, y, task=task, groups=groups, **self._fit_kwargs())
        self.model_ = self.result_.model
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = X.shape[1]
        self.leaderboard_ = self.result_.leaderboard()
        self.cv_score_ = self.result_.cv_score
        return self

    def _fit_kwargs(self) -> dict[str, Any]:
        return self._search_kwargs()

    def _frame(self, X: Any) -> pd.DataFrame:
        check_is_fitted(self, "model_")
        frame = _as_frame(X)
        if not isinstance(X, pd.DataFrame):
            frame.columns = list(self.feature_names_in_)
        return frame

    def predict(self, X: Any) -> np.ndarray:
        return self.model_.predict(self._frame(X))


class AutoClassifier(ClassifierMixin, _AutoBase):
    """Search, ensemble and refit a classifier within ``time_budget`` seconds.

    Args:
        time_budget: wall-clock seconds for search, ensembling and refit.
        metric: "auto" (ROC AUC for two classes, log loss for more) or a metric name.
        n_trials: stop after this many trials (with ``seed``, makes runs reproducible).
        search: "bayes" (Optuna TPE), "random" or "grid".
        families: model families to try (default: all installed).
        cv: "auto", a number of folds, or "holdout".
        class_weight: None or "balanced" (for imbalanced classes).
        threshold: None, a probability, or "f1"/"balanced_accuracy" to choose the decision
            threshold of a binary model on out-of-fold predictions.
    """

    _task = None

    def __init__(self, time_budget: float = 60.0, metric: str | None = None,
                 n_trials: int | None = None, search: str = "bayes",
                 families: list[str] | None = None, cv: int | str = "auto", seed: int = 0,
                 n_jobs: int = -1, class_weight: str | None = None,
                 threshold: str | float | None = None) -> None:
        super().__init__(time_budget, metric, n_trials, search, families, cv, seed, n_jobs)
        self.class_weight = class_weight
        self.threshold = threshold

    def _fit_kwargs(self) -> dict[str, Any]:
        return {**self._search_kwargs(), "class_weight": self.class_weight,
                "threshold": self.threshold}

    @property
    def classes_(self) -> np.ndarray:
        check_is_fitted(self, "model_")
        return self.model_.classes_

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.model_.predict_proba(self._frame(X))


class AutoRegressor(RegressorMixin, _AutoBase):
    """Search, ensemble and refit a regressor within ``time_budget`` seconds.

    Same arguments as :class:`AutoClassifier` (metric "auto" is RMSE), without the
    classification-only ones.
    """

    _task = Task.REGRESSION
