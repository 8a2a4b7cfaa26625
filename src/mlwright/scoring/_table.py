"""The one metric table: every metric's name, aliases, direction, report label and point
function, the default metric per task, and the search's "metric as a loss" view of it.

Point functions work on raw predictions: classification predictions are class-probability
matrices (n_rows, n_classes) over label-encoded classes (label metrics take the arg-max),
regression predictions are 1-D. A name outside the table may still be any scikit-learn
scorer name (``get_scorer_names()``); :func:`get_metric` wraps it.

Tasks are their names ("binary", "multiclass", "regression"): ``mlwright.data.kinds.Task``
is a string enum, so its members work wherever a name does, and scoring, a foundation,
needs nothing from the data stage.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn import metrics as skm

from mlwright.exceptions import ConfigError

__all__ = [
    "DEFAULT_METRIC",
    "METRICS",
    "Metric",
    "MetricInfo",
    "canonical_name",
    "get_metric",
    "greater_is_better",
    "metric_info",
    "metric_label",
    "row_terms",
    "score_or_nan",
]

PointFn = Callable[[np.ndarray, np.ndarray], float]
_BINARY, _MULTICLASS, _REGRESSION = "binary", "multiclass", "regression"
_CLASSIFICATION = frozenset({_BINARY, _MULTICLASS})
_INF = math.inf

#: The metric of each task when the user names none (keys: task names or ``Task`` members).
DEFAULT_METRIC: dict[str, str] = {_BINARY: "roc_auc", _MULTICLASS: "log_loss",
                                  _REGRESSION: "rmse"}


@dataclass(frozen=True)
class MetricInfo:
    """One row of the table. ``point`` is None for metrics only the report lists (per-class
    averages, precision, recall): the search takes those from scikit-learn by name."""

    name: str
    label: str
    greater_is_better: bool
    needs_proba: bool
    tasks: frozenset[str]
    point: PointFn | None = None
    aliases: tuple[str, ...] = ()
    bounds: tuple[float, float] = (-_INF, _INF)


# ---------------------------------------------------------------------------- point functions

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
        return float(skm.roc_auc_score(y, score))  # raises the usual clear error
    ranks = rankdata(score)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    if p.shape[1] == 2:
        return _binary_auc(y, p[:, 1])
    return float(skm.roc_auc_score(y, p, multi_class="ovr", average="macro",
                                   labels=np.arange(p.shape[1])))


def _log_loss_terms(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p, np.finfo(np.float64).eps, 1.0)  # as scikit-learn clips
    p = p / p.sum(axis=1, keepdims=True)
    return -np.log(p[np.arange(len(y)), np.asarray(y, dtype=np.int64)])


def _brier_terms(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    # Binary: the usual (p1 - y)^2, as scikit-learn's brier_score_loss; multiclass: the sum
    # over the classes.
    y = np.asarray(y, dtype=np.int64)
    if p.shape[1] == 2:
        return (p[:, 1] - y) ** 2
    return np.sum((p - np.eye(p.shape[1])[y]) ** 2, axis=1)


# Named functions, not lambdas: a fitted model keeps its Metric, and pickle stores
# functions by name (AutoRegressor failed scikit-learn's pickling check on a lambda).
def _f1_score(y: Any, p: np.ndarray, *, average: str) -> float:
    return float(skm.f1_score(y, _labels(p), average=average))


def _f1(average: str) -> PointFn:
    return functools.partial(_f1_score, average=average)


def _log_loss(y: Any, p: np.ndarray) -> float:
    return float(np.mean(_log_loss_terms(y, p)))


def _accuracy(y: Any, p: np.ndarray) -> float:
    return float(np.mean(np.asarray(y) == _labels(p)))


def _balanced_accuracy(y: Any, p: np.ndarray) -> float:
    return float(skm.balanced_accuracy_score(y, _labels(p)))


def _average_precision(y: Any, p: np.ndarray) -> float:
    return float(skm.average_precision_score(y, p[:, 1]))


def _brier(y: Any, p: np.ndarray) -> float:
    return float(np.mean(_brier_terms(y, p)))


def _mcc(y: Any, p: np.ndarray) -> float:
    return float(skm.matthews_corrcoef(y, _labels(p)))


def _rmse(y: Any, p: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(y) - p) ** 2)))


def _mse(y: Any, p: np.ndarray) -> float:
    return float(skm.mean_squared_error(y, p))


def _mae(y: Any, p: np.ndarray) -> float:
    return float(skm.mean_absolute_error(y, p))


def _r2(y: Any, p: np.ndarray) -> float:
    return float(skm.r2_score(y, p))


def _mape(y: Any, p: np.ndarray) -> float:
    return float(skm.mean_absolute_percentage_error(y, p))


def _median_ae(y: Any, p: np.ndarray) -> float:
    return float(skm.median_absolute_error(y, p))


_ROWS = [
    MetricInfo("roc_auc", "ROC AUC", True, True, _CLASSIFICATION, _roc_auc, ("auc",),
               (0.0, 1.0)),
    MetricInfo("log_loss", "Log loss", False, True, _CLASSIFICATION,
               _log_loss,
               ("logloss", "neg_log_loss"), (0.0, _INF)),
    MetricInfo("accuracy", "Accuracy", True, False, _CLASSIFICATION,
               _accuracy, (), (0.0, 1.0)),
    MetricInfo("balanced_accuracy", "Balanced accuracy", True, False, _CLASSIFICATION,
               _balanced_accuracy, (), (0.0, 1.0)),
    MetricInfo("f1", "F1", True, False, frozenset({_BINARY}), _f1("binary"), (),
               (0.0, 1.0)),
    MetricInfo("f1_macro", "F1 (macro)", True, False, _CLASSIFICATION, _f1("macro"), (),
               (0.0, 1.0)),
    MetricInfo("f1_weighted", "F1 (weighted)", True, False, _CLASSIFICATION, _f1("weighted"),
               (), (0.0, 1.0)),
    MetricInfo("average_precision", "PR AUC (average precision)", True, True,
               frozenset({_BINARY}),
               _average_precision, ("pr_auc",),
               (0.0, 1.0)),
    MetricInfo("brier", "Brier score", False, True, _CLASSIFICATION,
               _brier, ("neg_brier_score",),
               (0.0, _INF)),
    MetricInfo("mcc", "MCC", True, False, _CLASSIFICATION,
               _mcc,
               ("matthews_corrcoef",), (-1.0, 1.0)),
    MetricInfo("precision", "Precision", True, False, frozenset({_BINARY}),
               bounds=(0.0, 1.0)),
    MetricInfo("recall", "Recall", True, False, frozenset({_BINARY}), bounds=(0.0, 1.0)),
    MetricInfo("rmse", "RMSE", False, False, frozenset({_REGRESSION}),
               _rmse,
               ("neg_root_mean_squared_error",), (0.0, _INF)),
    MetricInfo("mse", "MSE", False, False, frozenset({_REGRESSION}),
               _mse, ("neg_mean_squared_error",),
               (0.0, _INF)),
    MetricInfo("mae", "MAE", False, False, frozenset({_REGRESSION}),
               _mae,
               ("neg_mean_absolute_error",), (0.0, _INF)),
    MetricInfo("r2", "R²", True, False, frozenset({_REGRESSION}),
               _r2, (), (-_INF, 1.0)),
    MetricInfo("mape", "MAPE", False, False, frozenset({_REGRESSION}),
               _mape,
               ("neg_mean_absolute_percentage_error",), (0.0, _INF)),
    MetricInfo("median_absolute_error", "Median absolute error", False, False,
               frozenset({_REGRESSION}),
               _median_ae,
               ("median_ae", "neg_median_absolute_error"), (0.0, _INF)),
]
# The multiclass report's averages over classes (f1_macro / f1_weighted are rows above).
_ROWS += [MetricInfo(f"{row.name}_{avg}", f"{row.label} ({avg})", row.greater_is_better,
                     row.needs_proba, frozenset({_MULTICLASS}), bounds=row.bounds)
          for row in list(_ROWS) if row.name in ("precision", "recall", "roc_auc",
                                                 "average_precision")
          for avg in ("macro", "weighted")]

#: Every metric by canonical name.
METRICS: dict[str, MetricInfo] = {row.name: row for row in _ROWS}
_ALIASES: dict[str, str] = {alias: row.name for row in _ROWS for alias in row.aliases}


def canonical_name(name: str) -> str:
    """The table's name for ``name`` (an alias resolved); other names unchanged."""
    return _ALIASES.get(name, name)


def metric_info(name: str) -> MetricInfo | None:
    """The table's row for ``name`` or one of its aliases; None for other names."""
    return METRICS.get(canonical_name(name))


def metric_label(name: str) -> str:
    """How a report names the metric (the name itself when the table does not know it)."""
    info = metric_info(name)
    return info.label if info is not None else name


def greater_is_better(name: str) -> bool:
    """The metric's direction; for a scikit-learn scorer name, the scorer's sign."""
    info = metric_info(name)
    if info is not None:
        return info.greater_is_better
    try:
        return bool(skm.get_scorer(name)._sign > 0)
    except ValueError:
        return True


def row_terms(name: str, y: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, bool] | None:
    """Per-row terms whose (weighted) mean is the metric, and whether a square root follows
    (rmse); None for metrics that are not a mean over rows. Resamples of such a metric are
    a matrix product of count weights with these terms."""
    name = canonical_name(name)
    if name == "log_loss":
        return _log_loss_terms(y, pred), False
    if name == "accuracy":
        return (pred.argmax(axis=1) == y).astype(float), False
    if name == "brier":
        return _brier_terms(y, pred), False
    if name in ("rmse", "mse"):
        return (y - pred) ** 2, name == "rmse"
    if name == "mae":
        return np.abs(y - pred), False
    return None


# ---------------------------------------------------------------------------- loss view

@dataclass(frozen=True)
class Metric:
    """``score(y, pred)`` in the metric's own units; ``loss`` is what the search minimises."""

    name: str
    greater_is_better: bool
    _fn: PointFn

    def score(self, y: np.ndarray, pred: np.ndarray) -> float:
        return float(self._fn(y, pred))

    def loss(self, y: np.ndarray, pred: np.ndarray) -> float:
        s = self.score(y, pred)
        return -s if self.greater_is_better else s

    def to_score(self, loss: float) -> float:
        return -loss if self.greater_is_better else loss


def _from_sklearn(name: str, task: str) -> Metric:
    """Wrap a scikit-learn scorer name that the table does not cover."""
    try:
        scorer = skm.get_scorer(name)
    except ValueError:
        known = sorted(row.name for row in _ROWS if row.point is not None)
        raise ConfigError(
            f"Unknown metric {name!r}: expected 'auto', one of {', '.join(known)}, or a "
            f"scikit-learn scorer name (sklearn.metrics.get_scorer_names())."
        ) from None
    fn, sign, kwargs = scorer._score_func, scorer._sign, scorer._kwargs
    needs_proba = "proba" in str(getattr(scorer, "_response_method", ""))

    def score(y: np.ndarray, p: np.ndarray) -> float:
        if task == _REGRESSION:
            return float(fn(y, p, **kwargs))
        if needs_proba:
            return float(fn(y, p[:, 1] if p.shape[1] == 2 else p, **kwargs))
        return float(fn(y, _labels(p), **kwargs))

    # get_scorer negates losses; keep the user's own units and flip the direction instead.
    return Metric(name, sign > 0, score)


def get_metric(name: str | None, task: str) -> Metric:
    """The :class:`Metric` called ``name`` (``None``/"auto": the task's default)."""
    if task not in DEFAULT_METRIC:
        raise ConfigError(f"Unknown task {task!r}: expected one of {', '.join(DEFAULT_METRIC)}.")
    task = str(task)
    if name in (None, "auto"):
        name = DEFAULT_METRIC[task]
    assert name is not None
    info = metric_info(name)
    if info is None or info.point is None:
        return _from_sklearn(name, task)
    if task not in info.tasks:
        if task == _MULTICLASS and _BINARY in info.tasks:
            raise ConfigError(f"{name!r} is for binary targets; use 'f1_macro' for multiclass.")
        raise ConfigError(
            f"The metric {name!r} does not fit a {task} task; the default for it is "
            f"{DEFAULT_METRIC[task]!r}."
        )
    return Metric(info.name, info.greater_is_better, info.point)


def score_or_nan(metric: Metric, y: np.ndarray, pred: np.ndarray) -> float:
    """``metric.score``, or nan where the rows have none (e.g. one class: no ROC AUC)."""
    try:
        return metric.score(y, pred)
    except ValueError:
        return float("nan")
