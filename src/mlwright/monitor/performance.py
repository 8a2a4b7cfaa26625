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


def join_feedback(engine: Engine, model: str, window: LogWindow) -> tuple[np.ndarray, list]:
    """(positions in the window, labels) of the window's records that have feedback, by
    request id and record index (a missing index means 0) or by the caller's key; a record
    labelled twice keeps its latest label."""
    import orjson
    from sqlalchemy import and_, func, select

    from mlwright.serve.logstore import feedback as f
    from mlwright.serve.logstore import predictions as p

    ids = window.columns["id"]
    if ids.size == 0:
        return np.array([], dtype=np.int64), []
    where = [p.c.model == model, p.c.id >= int(ids.min()), p.c.id <= int(ids.max())]
    by_request = select(p.c.id, f.c.ts, f.c.id, f.c.label).select_from(p.join(f, and_(
        f.c.request_id == p.c.request_id, func.coalesce(f.c.row, 0) == p.c.row))).where(*where)
    by_key = select(p.c.id, f.c.ts, f.c.id, f.c.label).select_from(p.join(f, and_(
        f.c.key.is_not(None), f.c.key == p.c.key))).where(*where)
    latest: dict[int, tuple[float, int, str]] = {}
    with engine.connect() as conn:
        for query in (by_request, by_key):
            for pid, ts, fid, label in conn.execute(query):
                if pid not in latest or (ts, fid) > latest[pid][:2]:
                    latest[pid] = (ts, fid, label)
    if not latest:
        return np.array([], dtype=np.int64), []
    position = {int(i): k for k, i in enumerate(ids)}
    pairs = sorted((position[pid], orjson.loads(v[2])) for pid, v in latest.items()
                   if pid in position)
    return np.array([k for k, _ in pairs], dtype=np.int64), [lab for _, lab in pairs]


def _score_fn(reference: Reference) -> tuple[Any, Any]:
    from mlwright.data.kinds import Task
    from mlwright.search.metrics import get_metric

    task = Task(reference.task or "regression")
    return task, get_metric(reference.metric, task)


def live_performance(engine: Engine, model: str, window: LogWindow, reference: Reference, *,
                     n_boot: int = 200, buckets: int = 10, seed: int = 0
                     ) -> Performance | None:
    """The metric of the window's answered records that got feedback (None without any)."""
    import orjson

    if reference.contract.target is None:
        return None
    positions, labels = join_feedback(engine, model, window)
    task, metric = _score_fn(reference)
    ok = window.columns["status"][positions] == 200 if positions.size else np.array([], bool)
    positions = positions[ok]
    labels = [lab for lab, keep in zip(labels, ok, strict=True) if keep]
    if task.value == "regression":
        pred_text = window.columns["prediction"][positions]
        pred = np.array([np.nan if t is None else float(orjson.loads(t)) for t in pred_text])
        y = np.array([np.nan if v is None else float(v) for v in labels])
        keep = np.isfinite(pred) & np.isfinite(y)
        y, pred = y[keep], pred[keep]
    else:
        lookup = {str(c): i for i, c in enumerate(reference.classes or [])}
        proba_text = window.columns["proba"][positions]
        keep = np.array([str(v) in lookup and t is not None
                         for v, t in zip(labels, proba_text, strict=True)], dtype=bool)
        y = np.array([lookup[str(v)] for v, k in zip(labels, keep, strict=True) if k],
                     dtype=np.int64)
        texts = [t for t, k in zip(proba_text, keep, strict=True) if k]
        pred = np.array(orjson.loads("[" + ",".join(texts) + "]"), dtype=np.float64) \
            if texts else np.empty((0, len(lookup)))
    positions = positions[keep]
    offline = reference.offline_score
    if len(y) == 0:
        return Performance(metric.name, metric.greater_is_better, 0, None, None, None, offline)
    value, low, high = _with_interval(metric, y, pred, n_boot, seed)
    over_time = []
    ts = window.columns["ts"][positions]
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


def _with_interval(metric: Any, y: np.ndarray, pred: np.ndarray, n_boot: int, seed: int
                   ) -> tuple[float | None, float | None, float | None]:
    value = _safe(metric, y, pred)
    if not np.isfinite(value):
        return None, None, None
    if n_boot <= 0 or len(y) < 10:
        return value, None, None
    rng = np.random.default_rng(seed)
    boots = [_safe(metric, y[i], pred[i]) for i in rng.integers(0, len(y), (n_boot, len(y)))]
    boots = np.array([b for b in boots if np.isfinite(b)])
    if boots.size < n_boot // 2:
        return value, None, None
    return value, float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))
