"""Metrics the search optimises, as losses (lower is better) on raw predictions.

Classification predictions are always class-probability matrices (n_rows, n_classes) over
label-encoded classes; regression predictions are 1-D. A metric is one of the names below
or any scikit-learn scorer name (``get_scorer_names()``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from mlwright.data.kinds import Task
from mlwright.exceptions import ConfigError

__all__ = ["DEFAULT_METRIC", "Metric", "get_metric"]

DEFAULT_METRIC = {Task.BINARY: "roc_auc", Task.MULTICLASS: "log_loss", Task.REGRESSION: "rmse"}


@dataclass(frozen=True)
class Metric:
    """``score(y, pred)`` in the metric's own units; ``loss`` is what the search minimises."""

    name: str
    greater_is_better: bool
    _fn: Callable[[np.ndarray, np.ndarray], float]

    def score(self, y: np.ndarray, pred: np.ndarray) -> float:
        return float(self._fn(y, pred))

    def loss(self, y: np.ndarray, pred: np.ndarray) -> float:
        s = self.score(y, pred)
        return -s if self.greater_is_better else s

    def to_score(self, loss: float) -> float:
        return -loss if self.greater_is_better else loss


def _labels(pred: np.ndarray) -> np.ndarray:
    return pred.argmax(axis=1)


def _binary_auc(y: np.ndarray, score: np.ndarray) -> float:
    # Mann-Whitney U on average ranks: the same value as roc_auc_score, ~10x cheaper, which
    # matters because ensemble selection evaluates it hundreds of times.
    from scipy.stats import rankdata

    pos = y == 1
    n_pos = int(pos.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return skm.roc_auc_score(y, score)  # raises the usual clear error
    ranks = rankdata(score)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    if p.shape[1] == 2:
        return _binary_auc(y, p[:, 1])
    return skm.roc_auc_score(y, p, multi_class="ovr", average="macro",
                             labels=np.arange(p.shape[1]))


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, np.finfo(np.float64).eps, 1.0)  # as scikit-learn clips
    p = p / p.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(p[np.arange(len(y)), np.asarray(y, dtype=np.int64)])))


_CLASSIFICATION: dict[str, tuple[bool, Callable[[np.ndarray, np.ndarray], float]]] = {
    "roc_auc": (True, _roc_auc),
    "log_loss": (False, _log_loss),
    "accuracy": (True, lambda y, p: float(np.mean(np.asarray(y) == _labels(p)))),
    "balanced_accuracy": (True, lambda y, p: skm.balanced_accuracy_score(y, _labels(p))),
    "f1": (True, lambda y, p: skm.f1_score(y, _labels(p))),
    "f1_macro": (True, lambda y, p: skm.f1_score(y, _labels(p), average="macro")),
    "f1_weighted": (True, lambda y, p: skm.f1_score(y, _labels(p), average="weighted")),
    "average_precision": (True, lambda y, p: skm.average_precision_score(y, p[:, 1])),
    "brier": (False, lambda y, p: float(np.mean(np.sum(
        (p - np.eye(p.shape[1])[y]) ** 2, axis=1)))),
    "mcc": (True, lambda y, p: skm.matthews_corrcoef(y, _labels(p))),
}
_REGRESSION: dict[str, tuple[bool, Callable[[np.ndarray, np.ndarray], float]]] = {
    "rmse": (False, lambda y, p: float(np.sqrt(np.mean((np.asarray(y) - p) ** 2)))),
    "mse": (False, lambda y, p: skm.mean_squared_error(y, p)),
    "mae": (False, lambda y, p: skm.mean_absolute_error(y, p)),
    "r2": (True, lambda y, p: skm.r2_score(y, p)),
    "mape": (False, lambda y, p: skm.mean_absolute_percentage_error(y, p)),
    "median_absolute_error": (False, lambda y, p: skm.median_absolute_error(y, p)),
}
_ALIASES = {"auc": "roc_auc", "logloss": "log_loss", "neg_log_loss": "log_loss",
            "neg_root_mean_squared_error": "rmse", "neg_mean_squared_error": "mse",
            "neg_mean_absolute_error": "mae", "neg_brier_score": "brier",
            "matthews_corrcoef": "mcc", "neg_mean_absolute_percentage_error": "mape",
            "neg_median_absolute_error": "median_absolute_error"}


def _from_sklearn(name: str, task: Task) -> Metric:
    """Wrap a scikit-learn scorer name that the tables above do not cover."""
    try:
        scorer = skm.get_scorer(name)
    except ValueError:
        known = sorted({*_CLASSIFICATION, *_REGRESSION})
        raise ConfigError(
            f"Unknown metric {name!r}: expected 'auto', one of {', '.join(known)}, or a "
            f"scikit-learn scorer name (sklearn.metrics.get_scorer_names())."
        ) from None
    fn, sign, kwargs = scorer._score_func, scorer._sign, scorer._kwargs
    needs_proba = "proba" in str(getattr(scorer, "_response_method", ""))

    def score(y: np.ndarray, p: np.ndarray) -> float:
        if task is Task.REGRESSION:
            return fn(y, p, **kwargs)
        if needs_proba:
            return fn(y, p[:, 1] if p.shape[1] == 2 else p, **kwargs)
        return fn(y, _labels(p), **kwargs)

    # get_scorer negates losses; keep the user's own units and flip the direction instead.
    return Metric(name, sign > 0, score)


def get_metric(name: str | None, task: Task) -> Metric:
    """The :class:`Metric` called ``name`` (``None``/"auto": the task's default)."""
    if name in (None, "auto"):
        name = DEFAULT_METRIC[task]
    key = _ALIASES.get(name, name)
    table = _REGRESSION if task is Task.REGRESSION else _CLASSIFICATION
    if key in table:
        if task is Task.MULTICLASS and key in ("f1", "average_precision"):
            raise ConfigError(f"{name!r} is for binary targets; use 'f1_macro' for multiclass.")
        greater, fn = table[key]
        return Metric(key, greater, fn)
    other = _CLASSIFICATION if task is Task.REGRESSION else _REGRESSION
    if key in other:
        raise ConfigError(
            f"The metric {name!r} does not fit a {task.value} task; the default for it is "
            f"{DEFAULT_METRIC[task]!r}."
        )
    return _from_sklearn(name, task)
