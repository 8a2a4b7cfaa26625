"""scikit-learn estimators over the search: ``AutoClassifier`` and ``AutoRegressor``.

They follow the estimator contract (``__init__`` only stores, ``fit`` searches), so they
clone, nest in pipelines and cross-validate like any other estimator.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from mlwright.data.kinds import Task

__all__ = ["AutoClassifier", "AutoRegressor"]


def _numeric_if_possible(array: np.ndarray) -> np.ndarray:
    """An object array of numbers becomes float; one holding text stays object (categories).

    Anything else (a dict, a list) raises the TypeError scikit-learn's contract expects.
    """
    if array.dtype != object:
        return array
    try:
        return array.astype(np.float64)
    except ValueError:
        return array  # text: categorical features, encoded by the search's prep


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

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing values are imputed by the search's prep
        tags.non_deterministic = False
        return tags

    def _validate(self, X: Any, y: Any = None, *, reset: bool) -> pd.DataFrame:
        """A DataFrame of the features; arrays go through scikit-learn's own checks.

        A DataFrame keeps its dtypes (text, dates, categories are the point of the search);
        only its width and names are checked. Any other input must be a finite-or-NaN 2-D
        array, which scikit-learn validates and reports in its usual words.
        """
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, skip_check_array=True, reset=reset)
            return X
        array = validate_data(self, X, reset=reset, dtype=None, accept_sparse=False,
                              ensure_all_finite="allow-nan")
        array = _numeric_if_possible(np.asarray(array))
        if array.dtype.kind == "f" and np.isinf(array).any():
            raise ValueError("Input X contains infinity; replace it with NaN or a finite "
                             "value.")
        names = getattr(self, "feature_names_in_", None)
        columns = ([str(c) for c in names] if names is not None and not reset
                   else [f"x{i}" for i in range(array.shape[1])])
        return pd.DataFrame(array, columns=columns)

    def _target(self, y: Any) -> pd.Series:
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the "
                             f"target y is None.")
        return pd.Series(column_or_1d(y, warn=True), name="target")

    def fit(self, X: Any, y: Any, groups: Any = None) -> _AutoBase:
        from mlwright.search.engine import run_search

        target = self._target(y)
        frame = self._validate(X, reset=True)
        if len(target) != len(frame):
            raise ValueError(f"X has {len(frame)} rows but y has {len(target)}: they must "
                             f"have one label per row.")
        if len(frame) < 2:
            raise ValueError(f"Got {len(frame)} sample (n_samples={len(frame)}); a search "
                             f"needs at least 2 rows to validate a model.")
        task = self._task
        if task is Task.REGRESSION and target.dtype == object:
            try:
                target = target.astype(np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"Unknown label type: {type(self).__name__} needs a numeric "
                                 f"target y, got values such as {target.iloc[0]!r}. Use "
                                 f"AutoClassifier for class labels.") from None
        if task is not Task.REGRESSION:
            check_classification_targets(target)
            n_classes = target.nunique()
            if n_classes < 2:
                raise ValueError(f"A classifier needs at least two classes; y holds one "
                                 f"class ({target.iloc[0]!r}) in {len(target)} rows.")
            task = Task.BINARY if n_classes == 2 else Task.MULTICLASS
        self.result_ = run_search(frame, target, task=task, groups=groups,
                                  **self._fit_kwargs())
        self.model_ = self.result_.model
        if task is not Task.REGRESSION:
            # The classes in y's own dtype (the ensemble keeps them as objects), so that
            # predict() compares equal to y in every scikit-learn metric.
            dtype = np.unique(column_or_1d(y)).dtype
            self.classes_ = np.asarray(list(self.model_.classes_), dtype=dtype)
        self.leaderboard_ = self.result_.leaderboard()
        self.cv_score_ = self.result_.cv_score
        return self

    def _fit_kwargs(self) -> dict[str, Any]:
        return self._search_kwargs()

    def _frame(self, X: Any) -> pd.DataFrame:
        check_is_fitted(self, "model_")
        return self._validate(X, reset=False)

    def predict(self, X: Any) -> np.ndarray:
        frame = self._frame(X)
        return np.asarray(self.model_.predict(frame))


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
                 n_jobs: int = -1, class_weight: str | dict[Any, float] | None = None,
                 threshold: str | float | None = None) -> None:
        super().__init__(time_budget, metric, n_trials, search, families, cv, seed, n_jobs)
        self.class_weight = class_weight
        self.threshold = threshold

    def _fit_kwargs(self) -> dict[str, Any]:
        return {**self._search_kwargs(), "class_weight": self.class_weight,
                "threshold": self.threshold}

    def predict(self, X: Any) -> np.ndarray:
        proba = self.predict_proba(X)
        threshold = self.model_.threshold
        if threshold is not None and proba.shape[1] == 2:
            return self.classes_[(proba[:, 1] >= threshold).astype(int)]
        return self.classes_[proba.argmax(axis=1)]

    def predict_proba(self, X: Any) -> np.ndarray:
        frame = self._frame(X)  # first: it raises NotFittedError before model_ is read
        return np.asarray(self.model_.predict_proba(frame), dtype=np.float64)


class AutoRegressor(RegressorMixin, _AutoBase):
    """Search, ensemble and refit a regressor within ``time_budget`` seconds.

    Same arguments as :class:`AutoClassifier` (metric "auto" is RMSE), without the
    classification-only ones.
    """

    _task = Task.REGRESSION
