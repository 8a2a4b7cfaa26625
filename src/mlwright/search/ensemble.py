"""Greedy ensemble selection (Caruana et al., 2004) and the fitted ensemble it produces."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from mlwright._logging import get_logger
from mlwright.data.kinds import Task
from mlwright.exceptions import ColumnNotFoundError, MlwrightError
from mlwright.scoring import Metric

__all__ = ["Ensemble", "greedy_selection"]

_log = get_logger(__name__)


def greedy_selection(preds: list[np.ndarray], y: np.ndarray, metric: Metric, *,
                     rounds: int = 40, mask: np.ndarray | None = None) -> dict[int, float]:
    """Weights over ``preds`` that minimise ``metric`` on their average.

    Models are added one at a time, with replacement, each time the one whose addition helps
    most; the best ensemble seen along the way is kept. Returns {index: weight}.
    """
    if mask is not None:
        preds = [p[mask] for p in preds]
        y = y[mask]
    losses = [metric.loss(y, p) for p in preds]
    best_single = int(np.argmin(losses))
    counts: Counter[int] = Counter({best_single: 1})
    total = preds[best_single].astype(float).copy()
    best_loss, best_counts = losses[best_single], Counter(counts)
    for step in range(2, rounds + 1):
        trial_losses = [metric.loss(y, (total + p) / step) for p in preds]
        pick = int(np.argmin(trial_losses))
        counts[pick] += 1
        total += preds[pick]
        if trial_losses[pick] < best_loss - 1e-12:
            best_loss, best_counts = trial_losses[pick], Counter(counts)
    n = sum(best_counts.values())
    return {i: c / n for i, c in sorted(best_counts.items())}


class Ensemble(BaseEstimator):
    """The final model: a weighted average of prep + estimator members.

    Members that share a preprocessing style share one fitted preprocessing step, which runs
    once per call. ``predict_proba`` / ``predict`` take a DataFrame of the training columns
    (extra columns are ignored; missing ones raise an error naming them).
    """

    def __init__(self, preps: dict[str, Any], members: list[dict[str, Any]], task: Task,
                 classes: list[Any] | None, feature_names: list[str],
                 threshold: float | None = None) -> None:
        self.preps = preps
        self.members = members
        self.task = task
        self.classes = classes
        self.feature_names = feature_names
        self.threshold = threshold

    @property
    def classes_(self) -> np.ndarray:
        if self.classes is None:
            raise AttributeError("a regression ensemble has no classes_")
        return np.asarray(self.classes, dtype=object)

    @property
    def _estimator_type(self) -> str:  # lets scikit-learn scorers pick the right method
        return "regressor" if self.task == Task.REGRESSION.value else "classifier"

    def _frame(self, X: Any) -> pd.DataFrame:
        if isinstance(X, dict):
            X = pd.DataFrame([X])
        elif isinstance(X, list):
            X = pd.DataFrame(X)
        elif not isinstance(X, pd.DataFrame):
            raise MlwrightError(
                f"Expected a pandas DataFrame (or a dict / list of dicts) with the columns "
                f"{self.feature_names}, got {type(X).__name__}."
            )
        if not all(isinstance(c, str) for c in X.columns):
            X = X.rename(columns=str)  # trained on string names (see run_search)
        missing = [c for c in self.feature_names if c not in X.columns]
        if missing:
            raise ColumnNotFoundError(missing[0], X.columns, role="feature column")
        return X

    def raw_predict(self, X: Any, *, compiled: bool = True) -> np.ndarray:
        """Probabilities (n, n_classes) for classification, values (n,) for regression.

        ``compiled`` (the default) goes through the compiled predictor, built at the first
        call (:mod:`mlwright.search.predictor`: column-wise prep, native batch predicts);
        ``compiled=False`` is the reference path it is held equal to.
        """
        X = self._frame(X)
        predictor = self._compiled() if compiled else None
        if predictor is not None:
            return predictor.raw_frame(X)
        transformed: dict[str, Any] = {}
        total: np.ndarray | None = None
        for member in self.members:
            style = member["style"]
            if style not in transformed:
                transformed[style] = self.preps[style].transform(X)
            out = _member_predict(member, transformed[style], self.task, self.classes)
            total = out * member["weight"] if total is None else total + out * member["weight"]
        assert total is not None
        return total

    def predict_proba(self, X: Any) -> np.ndarray:
        if self.task == Task.REGRESSION.value:
            raise AttributeError("predict_proba is for classification models")
        return self.raw_predict(X)

    def predict(self, X: Any) -> np.ndarray:
        return self.predict_with_proba(X)[0]

    def predict_with_proba(self, X: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """``predict`` and ``predict_proba`` (None for regression) from one pass over the
        members: callers that want both (the MLflow pyfunc) do not pay for two."""
        raw = self.raw_predict(X)
        if self.task == Task.REGRESSION.value:
            return raw, None
        if self.threshold is not None and raw.shape[1] == 2:
            idx = (raw[:, 1] >= self.threshold).astype(int)
        else:
            idx = raw.argmax(axis=1)
        return self.classes_[idx], raw

    def describe(self) -> list[dict[str, Any]]:
        """One entry per trial: family, weight, trial, and ``folds`` (the number of fold
        models) for a member shipped as its fold models instead of a refit."""
        out: dict[int, dict[str, Any]] = {}
        for m in self.members:
            entry = out.setdefault(m["trial"], {"family": m["family"], "weight": 0.0,
                                                "trial": m["trial"]})
            entry["weight"] += m["weight"]
            if "fold" in m:
                entry["folds"] = entry.get("folds", 0) + 1
        return list(out.values())

    def _compiled(self) -> Any:
        """The compiled predictor of these members, built once (None if it cannot be)."""
        key = (id(self.preps), id(self.members))
        cached = self.__dict__.get("_compiled_")
        if cached is None or cached[0] != key:
            try:
                predictor = self.compile()
            except Exception as exc:  # the reference path still answers
                _log.warning("prediction through the reference path: compiling the "
                             "ensemble failed (%s: %s)", type(exc).__name__, exc)
                predictor = None
            cached = self.__dict__["_compiled_"] = (key, predictor)
        return cached[1]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # a copy: object's is __dict__ itself
        state.pop("_compiled_", None)  # rebuilt on first use after loading
        return state

    def compile(self, contract: Any = None) -> Any:
        """A :class:`~mlwright.search.predictor.RecordPredictor` for serving: records in,
        the same predictions and probabilities out, without pandas (see that module)."""
        from mlwright.search.predictor import compile_predictor

        return compile_predictor(self, contract)


def _lightgbm_booster(estimator: Any) -> Any:
    if type(estimator).__module__.startswith("lightgbm"):
        return getattr(estimator, "booster_", None)
    return None


def _forest_mean(estimator: Any, X: Any) -> np.ndarray | None:
    """The mean of a scikit-learn forest's trees, read straight from the fitted trees.

    ``predict_proba`` / ``predict`` dispatch every tree through joblib and re-validate the
    input: 26 ms for one row with 150 trees, against 2.6 ms for this loop (the same
    values; leaves store class fractions since scikit-learn 1.4).
    """
    if not (type(estimator).__module__.startswith("sklearn.ensemble")
            and hasattr(estimator, "estimators_") and getattr(estimator, "n_outputs_", 2) == 1):
        return None
    if not hasattr(estimator.estimators_[0], "tree_"):
        return None
    X32 = np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float32)
    total = sum(tree.tree_.predict(X32) for tree in estimator.estimators_)
    return np.asarray(total, dtype=float).reshape(len(X32), -1) / len(estimator.estimators_)


def predict_values(estimator: Any, X: Any) -> np.ndarray:
    """Regression predictions, without the wrappers' per-call overhead where it is large
    (see :func:`full_proba`)."""
    booster = _lightgbm_booster(estimator)
    if booster is not None:
        return np.asarray(booster.predict(X, num_threads=1), dtype=float).ravel()
    forest = _forest_mean(estimator, X)
    if forest is not None:
        return forest.ravel()
    return np.asarray(estimator.predict(X), dtype=float).ravel()


def full_proba(estimator: Any, X: Any, n_classes: int) -> np.ndarray:
    """predict_proba with one column per class, even if a class was absent when fitting.

    LightGBM's scikit-learn wrapper re-validates its input on every call (about 1.3 ms for
    one row); its booster answers the same in about 0.1 ms, which matters when serving.
    """
    booster = _lightgbm_booster(estimator)
    forest = None if booster is not None else _forest_mean(estimator, X)
    if booster is not None:
        raw = np.asarray(booster.predict(X, num_threads=1), dtype=float)
        proba = raw if raw.ndim == 2 else np.column_stack([1.0 - raw, raw])
    elif forest is not None:
        proba = forest
    else:
        proba = np.asarray(estimator.predict_proba(X), dtype=float)
    seen = np.asarray(getattr(estimator, "classes_", np.arange(proba.shape[1]))).astype(int)
    if proba.shape[1] == n_classes and np.array_equal(seen, np.arange(n_classes)):
        return proba
    out = np.zeros((proba.shape[0], n_classes))
    out[:, seen] = proba
    return out


def _member_predict(member: dict[str, Any], Xt: Any, task: Task,
                    classes: list[Any] | None) -> np.ndarray:
    est = member["estimator"]
    if task == Task.REGRESSION.value:
        out = predict_values(est, Xt)
        out = np.expm1(out) if member.get("target_transform") == "log" else out
        return np.clip(out, *member["clip"]) if "clip" in member else out
    assert classes is not None
    return full_proba(est, Xt, len(classes))
