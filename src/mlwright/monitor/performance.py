"""Live performance: feedback labels joined with the logged predictions, scored with the
same metric functions as offline (:mod:`mlwright.search.metrics`), with bootstrap 95%
intervals, overall and over time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from mlwright.monitor.log import LogWindow
    from mlwright.monitor.reference import Reference

__all__ = ["Performance", "join_feedback", "live_performance"]


@dataclass
class Performance:
    metric: str
    greater_is_better: bool
    n_labelled: int
    value: float | None
    low: float | None
    high: float | None
    offline: float | None                       # the validation score of training
    over_time: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def join_feedback(engine: Engine, where: list[Any]) -> dict[str, Any]:
    """The scored records of the window ``where`` selects (``LogWindow.where``) that have
    feedback, oldest first: ``ts``, ``proba``, ``prediction`` and ``label`` (parsed JSON).

    The join is :func:`mlwright.store.labelled_records` (the loop's too). The database
    does the join, keeps the latest label and concatenates the JSON, so a window with
    200,000 labels costs a few fetched rows (and no Python work while it runs)."""
    import orjson
    from sqlalchemy import String, cast, func, select

    from mlwright.monitor.log import CHUNK
    from mlwright.store import labelled_records
    from mlwright.store import predictions as p

    out: dict[str, Any] = {"ts": np.array([]), "proba": [], "prediction": [], "label": []}
    if not where:
        return out
    with engine.connect() as conn:
        labelled = labelled_records(conn, where, (
            p.c.ts.label("pts"), func.coalesce(p.c.proba, "null").label("proba"),
            func.coalesce(p.c.prediction, "null").label("prediction")))
        if labelled is None:
            return out
        result = conn.execute(select(
            *(func.aggregate_strings(value, ",") for value in (
                cast(labelled.c.pid, String), cast(labelled.c.pts, String), labelled.c.proba,
                labelled.c.prediction, labelled.c.label))
        ).group_by(labelled.c.pid // CHUNK))
        chunks = result.cursor.fetchall()
        result.close()
    if not chunks:
        return out

    def parsed(column: int) -> list[Any]:
        return orjson.loads("[" + ",".join(c[column] for c in chunks) + "]")

    ids, ts = np.array(parsed(0), dtype=np.int64), np.array(parsed(1), dtype=np.float64)
    order = np.lexsort((ids, ts))
    out["ts"] = ts[order]
    for column, name in ((2, "proba"), (3, "prediction"), (4, "label")):
        values = parsed(column)
        out[name] = [values[i] for i in order]
    return out


def _score_fn(reference: Reference) -> tuple[Any, Any]:
    from mlwright.data.kinds import Task
    from mlwright.search.metrics import get_metric

    task = Task(reference.task or "regression")
    return task, get_metric(reference.metric, task)


def live_performance(engine: Engine, window: LogWindow, reference: Reference, *,
                     n_boot: int = 200, buckets: int = 10, seed: int = 0,
                     joined: dict[str, list[Any]] | None = None) -> Performance | None:
    """The metric of the window's answered records that got feedback (None without any);
    ``joined``: the window's :func:`join_feedback`, when already read."""
    if reference.contract.target is None:
        return None
    if joined is None:
        joined = join_feedback(engine, window.where)
    labels = joined["label"]
    task, metric = _score_fn(reference)
    if task.value == "regression":
        pred = np.array([np.nan if v is None else float(v) for v in joined["prediction"]])
        y = np.array([np.nan if v is None else float(v) for v in labels])
        keep = np.isfinite(pred) & np.isfinite(y) if len(y) else np.array([], dtype=bool)
        y, pred = y[keep], pred[keep]
    else:
        lookup = {str(c): i for i, c in enumerate(reference.classes or [])}
        keep = np.array([str(v) in lookup and row is not None
                         for v, row in zip(labels, joined["proba"], strict=True)], dtype=bool)
        y = np.array([lookup[str(v)] for v, k in zip(labels, keep, strict=True) if k],
                     dtype=np.int64)
        rows = [row for row, k in zip(joined["proba"], keep, strict=True) if k]
        pred = np.array(rows, dtype=np.float64) if rows else np.empty((0, len(lookup)))
    ts = np.asarray(joined["ts"], dtype=np.float64)[keep] if len(keep) else np.array([])
    offline = reference.offline_score
    if len(y) == 0:
        return Performance(metric.name, metric.greater_is_better, 0, None, None, None, offline)
    value, low, high = _with_interval(metric, y, pred, n_boot, seed)
    over_time = []
    n_buckets = max(1, min(buckets, len(y) // 30))
    for part in np.array_split(np.arange(len(y)), n_buckets):
        v, lo, hi = _with_interval(metric, y[part], pred[part], n_boot, seed)
        over_time.append({"start": float(ts[part].min()), "end": float(ts[part].max()),
                          "n": len(part), "value": v, "low": lo, "high": hi})
    return Performance(metric.name, metric.greater_is_better, len(y), value, low, high,
                       offline, over_time)


def _safe(metric: Any, y: np.ndarray, pred: np.ndarray) -> float:
    try:
        v = metric.score(y, pred)
    except ValueError:  # e.g. one class only: no ROC AUC
        return float("nan")
    return float(v)


def _row_losses(name: str, y: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, bool] | None:
    """Per-record terms whose (weighted) mean is the metric, and whether to take a square
    root after; None for metrics that are not a mean over records."""
    if name == "log_loss":
        p = np.clip(pred, np.finfo(np.float64).eps, 1.0)  # as search.metrics does
        p = p / p.sum(axis=1, keepdims=True)
        return -np.log(p[np.arange(len(y)), y.astype(np.int64)]), False
    if name == "accuracy":
        return (pred.argmax(axis=1) == y).astype(float), False
    if name == "brier":
        return np.sum((pred - np.eye(pred.shape[1])[y.astype(np.int64)]) ** 2, axis=1), False
    if name in ("rmse", "mse"):
        return (y - pred) ** 2, name == "rmse"
    if name == "mae":
        return np.abs(y - pred), False
    return None


def _weighted_auc(y: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Binary ROC AUC (ties count one half) for each row of ``weights`` (k x n)."""
    order = np.argsort(score, kind="mergesort")
    s, pos = score[order], y[order] == 1
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # tie groups are contiguous
    w = weights[:, order]
    gpos = np.add.reduceat(w * pos, starts, axis=1)
    gneg = np.add.reduceat(w * ~pos, starts, axis=1)
    below = np.cumsum(gneg, axis=1) - gneg
    den = gpos.sum(axis=1) * gneg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (gpos * (below + 0.5 * gneg)).sum(axis=1) / den, np.nan)


def _bootstrap(metric: Any, y: np.ndarray, pred: np.ndarray, n_boot: int,
               rng: np.random.Generator) -> np.ndarray:
    """``n_boot`` bootstrap replicates of the metric.

    Means over records (log loss, accuracy, Brier, RMSE, ...) and binary ROC AUC are
    computed from resampling *weights* (how often each record is drawn), vectorised over
    chunks of replicates: ~50x faster than rescoring resampled copies, same distribution.
    Other metrics are rescored on resampled copies.
    """
    n = len(y)
    name = metric.name
    binary_auc = name == "roc_auc" and pred.ndim == 2 and pred.shape[1] == 2
    losses = None if binary_auc else _row_losses(name, y, pred)
    if not binary_auc and losses is None:
        draws = rng.integers(0, n, (n_boot, n))
        return np.array([_safe(metric, y[i], pred[i]) for i in draws])
    out = []
    chunk = max(1, min(n_boot, 4_000_000 // max(n, 1)))
    for start in range(0, n_boot, chunk):
        k = min(chunk, n_boot - start)
        draws = rng.integers(0, n, (k, n)) + (np.arange(k) * n)[:, None]
        weights = np.bincount(draws.ravel(), minlength=k * n).reshape(k, n).astype(float)
        if binary_auc:
            out.append(_weighted_auc(y, pred[:, 1], weights))
        else:
            terms, root = losses
            mean = weights @ terms / n
            out.append(np.sqrt(mean) if root else mean)
    return np.concatenate(out)


#: Above this many labelled records, intervals are analytic (normal approximation: DeLong
#: for ROC AUC, the standard error of the mean for means over records); at such sizes the
#: central limit theorem holds and a bootstrap would cost seconds per window.
BOOTSTRAP_MAX = 5000


def _normal_interval(metric: Any, y: np.ndarray, pred: np.ndarray, value: float
                     ) -> tuple[float, float] | None:
    name = metric.name
    if name == "roc_auc" and pred.ndim == 2 and pred.shape[1] == 2:
        score = pred[:, 1]
        sp, sn = np.sort(score[y == 1]), np.sort(score[y != 1])
        m, k = len(sp), len(sn)
        if m < 2 or k < 2:
            return None
        lo, hi = np.searchsorted(sn, sp, "left"), np.searchsorted(sn, sp, "right")
        v10 = (lo + 0.5 * (hi - lo)) / k           # DeLong placement values
        lo, hi = np.searchsorted(sp, sn, "left"), np.searchsorted(sp, sn, "right")
        v01 = ((m - hi) + 0.5 * (hi - lo)) / m
        se = float(np.sqrt(v10.var(ddof=1) / m + v01.var(ddof=1) / k))
    else:
        found = _row_losses(name, y, pred)
        if found is None:
            return None
        terms, root = found
        se = float(terms.std(ddof=1) / np.sqrt(len(terms)))
        if root:  # delta method: d sqrt(x) = dx / (2 sqrt(x))
            se = se / (2 * value) if value > 0 else 0.0
    return value - 1.959964 * se, value + 1.959964 * se


def _with_interval(metric: Any, y: np.ndarray, pred: np.ndarray, n_boot: int, seed: int
                   ) -> tuple[float | None, float | None, float | None]:
    value = _safe(metric, y, pred)
    if not np.isfinite(value):
        return None, None, None
    if n_boot <= 0 or len(y) < 10:
        return value, None, None
    if len(y) > BOOTSTRAP_MAX:
        found = _normal_interval(metric, y, pred, value)
        if found is not None:
            return value, found[0], found[1]
    boots = _bootstrap(metric, y, pred, n_boot, np.random.default_rng(seed))
    boots = boots[np.isfinite(boots)]
    if boots.size < n_boot // 2:
        return value, None, None
    return value, float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))
