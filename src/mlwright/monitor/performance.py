"""Live performance: feedback labels joined with the logged predictions, scored with the
same metric functions as offline (:mod:`mlwright.scoring`), with 95% intervals
(:func:`mlwright.scoring.intervals.metric_interval`), overall and over time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
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
    from mlwright.store import float_text, labelled_records
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
                cast(labelled.c.pid, String), float_text(labelled.c.pts), labelled.c.proba,
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


def live_performance(engine: Engine, window: LogWindow | None, reference: Reference, *,
                     n_boot: int = 200, buckets: int = 10, seed: int = 0,
                     joined: dict[str, list[Any]] | None = None,
                     edges: Sequence[float] | None = None, min_labels: int = 1
                     ) -> Performance | None:
    """The metric of the window's answered records that got feedback (None without any);
    ``joined``: the window's :func:`join_feedback`, when already read (then ``window`` may
    be None). ``over_time`` cuts the labelled records into ``buckets`` of equal counts, or,
    with ``edges`` (ascending times), into the time bins ``(edges[i], edges[i+1]]`` that
    hold at least ``min_labels`` of them (the dashboard's windows)."""
    from mlwright.data.kinds import Task
    from mlwright.scoring import get_metric, live_arrays
    from mlwright.scoring.intervals import metric_interval

    if reference.contract.target is None:
        return None
    if joined is None:
        assert window is not None, "live_performance needs a window or its joined feedback"
        joined = join_feedback(engine, window.where)
    task = Task(reference.task or "regression")
    metric = get_metric(reference.metric, task)
    y, pred, keep = live_arrays(joined, task=task, classes=reference.classes or [],
                                label="label", prediction="prediction", proba="proba")
    ts = np.asarray(joined["ts"], dtype=np.float64)[keep] if len(keep) else np.array([])
    offline = reference.offline_score
    if len(y) == 0:
        return Performance(metric.name, metric.greater_is_better, 0, None, None, None, offline)
    value, low, high = metric_interval(metric, y, pred, n_boot=n_boot, seed=seed)
    over_time = []
    if edges is not None:
        # ts is sorted: each bin is one slice.
        cuts = np.searchsorted(ts, np.asarray(edges, dtype=np.float64), side="right")
        parts = [np.arange(a, b) for a, b in pairwise(cuts)]
        bounds = list(pairwise(edges))
    else:
        parts = np.array_split(np.arange(len(y)), max(1, min(buckets, len(y) // 30)))
        bounds = [(float(ts[part].min()), float(ts[part].max())) for part in parts]
    for part, (lo_t, hi_t) in zip(parts, bounds, strict=True):
        if len(part) < max(1, min_labels):
            continue
        v, lo, hi = metric_interval(metric, y[part], pred[part], n_boot=n_boot, seed=seed)
        over_time.append({"start": float(lo_t), "end": float(hi_t),
                          "n": len(part), "value": v, "low": lo, "high": hi})
    return Performance(metric.name, metric.greater_is_better, len(y), value, low, high,
                       offline, over_time)
