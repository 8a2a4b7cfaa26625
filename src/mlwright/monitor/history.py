"""The monitor over time: the log cut into aligned time windows, each summarised once.

A chart over a day or a year needs the monitor's figures per window (traffic, latency,
error and 422 rates, rows per version and role, drift, contract violations, live
live performance apart), not the log. Each window ``(end - step, end]`` is computed by
:func:`~mlwright.monitor.core.run_monitor` (the same code as ``mlwright monitor``, so the
numbers agree), summarised by :func:`summarize` and kept in the project database's
``monitor_windows`` table; later views read the rows. A window computed :data:`SETTLE`
seconds after its end is final; a younger one (its labels may still arrive) is recomputed
when its row is older than :data:`REFRESH` seconds.

Live performance is not kept per window: labels arrive late, so
:func:`performance_series` scores the range's labelled records (the store's one feedback
join) in the same windows whenever it is asked; callers memoize it on the log's and the
feedback's last ids.

Window lengths come from one ladder (:data:`STEPS`), so a range of any length reuses the
windows of earlier views: :func:`pick_step` takes the shortest step that cuts the range into
at most :data:`MAX_WINDOWS` windows.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from mlwright._logging import get_logger
from mlwright.exceptions import MonitorError
from mlwright.store import monitor_windows as mw_table
from mlwright.store import open_database
from mlwright.store import predictions as p

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from mlwright.config import MonitorConfig
    from mlwright.monitor.reference import Reference
    from mlwright.monitor.report import MonitorReport

__all__ = ["MAX_WINDOWS", "REFRESH", "SETTLE", "STEPS", "History", "log_span",
           "performance_series", "pick_step", "summarize", "window_edges", "window_history"]

log = get_logger(__name__)

#: Window lengths in seconds, shortest first (1 s: a replayed story; 1 w: years).
STEPS = (1, 5, 15, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400)
MAX_WINDOWS = 400
#: A window computed this long after its end is final (the server's log is flushed).
SETTLE = 60.0
#: A window that is not final is recomputed when its row is older than this.
REFRESH = 10.0
#: Bootstrap resamples of each window's live-performance interval.
N_BOOT = 100


def pick_step(span: float) -> int:
    """The shortest step of :data:`STEPS` that cuts ``span`` seconds into at most
    :data:`MAX_WINDOWS` windows."""
    for step in STEPS:
        if span / step <= MAX_WINDOWS:
            return step
    return STEPS[-1]


def window_edges(start: float, end: float, step: int) -> list[float]:
    """The aligned window bounds covering ``(start, end]``: multiples of ``step``, from the
    one at or before ``start`` to the one at or after ``end``."""
    first = math.floor(start / step) * step
    count = max(1, math.ceil((end - first) / step))
    return [float(first + i * step) for i in range(count + 1)]


def log_span(engine: Engine, model: str) -> tuple[float, float] | None:
    """The times of ``model``'s first and last logged records (the window index)."""
    from sqlalchemy import func, select

    with engine.connect() as conn:
        # Two queries: each is one seek at an end of the window index, where min and max in
        # one query scan it whole (0.4 s for a million records).
        first = conn.execute(select(func.min(p.c.ts)).where(p.c.model == model)).scalar()
        last = conn.execute(select(func.max(p.c.ts)).where(p.c.model == model)).scalar()
    return None if first is None or last is None else (float(first), float(last))


def _num(value: Any) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


def summarize(report: MonitorReport, *, step: float,
              roles: dict[str, int] | None = None) -> dict[str, Any]:
    """The figures of one window that the charts need (compact JSON-ready values)."""
    service, quality = report.service, report.quality
    features = {}
    for f in report.features:
        r = f.result
        # A test is read by its corrected p-value against alpha, a distance by itself.
        value = r.p_adjusted if r.kind == "test" else r.statistic
        features[f.name] = [_num(value), _num(r.threshold), bool(f.drifted), r.kind]
    violations: dict[str, int] = {}
    for v in quality.violations:
        column = v["column"] or "(record)"
        violations[column] = violations.get(column, 0) + int(v["count"])
    return {
        "n": report.n_records, "requests": service.n_requests,
        "rps": service.n_requests / step if step else None,
        "p50": _num(service.latency_ms.get("p50")), "p99": _num(service.latency_ms.get("p99")),
        "error_rate": service.error_rate, "rejected_rate": quality.rejected_rate,
        "server_error_rate": service.server_error_rate,
        "versions": report.versions, "roles": roles or {},
        "drift_share": report.drift.share, "dataset_drift": report.drift.drifted,
        "drift_threshold": report.drift.threshold,
        "prediction_drift": None if report.prediction_drift is None
        else _num(report.prediction_drift.result.statistic),
        "features": features, "violations": violations, "reference": report.reference,
    }


def _role_counts(engine: Engine, model: str, start: float, end: float) -> dict[str, int]:
    """Records of the window by role and version ("shadow 2": 40), shadows included (the
    monitor's window leaves them out); counted on the covering window index."""
    from sqlalchemy import func, select

    with engine.connect() as conn:
        rows = conn.execute(select(p.c.role, p.c.version, func.count()).where(
            p.c.model == model, p.c.ts > start, p.c.ts <= end).group_by(
                p.c.role, p.c.version)).all()
    return {f"{role} {version}": int(n) for role, version, n in rows}


@dataclass
class History:
    """Windows of one model over a range: ``windows`` holds (end, summary) oldest first,
    ``None`` for a window without records."""

    model: str
    step: int
    start: float
    end: float
    windows: list[tuple[float, dict[str, Any] | None]] = field(default_factory=list)
    computed: int = 0          # windows computed for this call (the rest were read)
    settled: bool = False      # every window final: the same windows on every later call

    @property
    def filled(self) -> list[tuple[float, dict[str, Any]]]:
        return [(t, s) for t, s in self.windows if s is not None]


def _compute(engine: Engine, model: str, reference: Reference, step: int, end: float,
             config: MonitorConfig | None) -> dict[str, Any] | None:
    from mlwright.monitor.core import run_monitor

    roles = _role_counts(engine, model, end - step, end)
    if not roles:
        return None
    try:
        report = run_monitor(engine, model, reference=reference, window=f"{step}s", end=end,
                             config=config, alerts=False, n_boot=N_BOOT)
    except MonitorError:  # only shadow records in the window: nothing the monitor reads
        return {"n": 0, "roles": roles}
    return summarize(report, step=step, roles=roles)


def window_history(database: str | Engine, model: str, *, reference: Reference,
                   start: float, end: float, step: int | None = None,
                   config: MonitorConfig | None = None, now: float | None = None,
                   max_compute: int | None = None) -> History:
    """The windows of ``model`` covering ``(start, end]``: read from ``monitor_windows``,
    the missing or stale ones computed with the monitor and stored.

    ``step`` defaults to :func:`pick_step` of the range; windows are aligned to multiples of
    it. ``max_compute`` bounds the windows computed in this call (the rest stay empty until
    a later call), so a first view of a long range cannot hold a request for minutes.
    """
    from sqlalchemy import delete, select
    from sqlalchemy.exc import IntegrityError

    engine = open_database(database) if isinstance(database, str) else database
    step = int(step or pick_step(max(end - start, 1.0)))
    now = time.time() if now is None else now
    ends = window_edges(start, end, step)[1:]
    history = History(model, step, start, end)
    if not ends:
        return history
    history.settled = ends[-1] + SETTLE <= now
    with engine.connect() as conn:
        rows = conn.execute(select(mw_table.c.end_ts, mw_table.c.computed,
                                   mw_table.c.n_records, mw_table.c.summary).where(
            mw_table.c.model == model, mw_table.c.step == step,
            mw_table.c.end_ts >= ends[0], mw_table.c.end_ts <= ends[-1])).all()
    cached = {float(e): (c, s) for e, c, _, s in rows}
    for window_end in ends:
        hit = cached.get(window_end)
        fresh = hit is not None and (hit[0] >= window_end + SETTLE or now - hit[0] < REFRESH)
        if fresh:
            assert hit is not None
            history.windows.append((window_end, orjson.loads(hit[1]) or None))
            continue
        if max_compute is not None and history.computed >= max_compute:
            history.settled = False
            history.windows.append((window_end, None if hit is None
                                    else orjson.loads(hit[1]) or None))
            continue
        summary = _compute(engine, model, reference, step, window_end, config)
        history.computed += 1
        history.windows.append((window_end, summary))
        if window_end > now:  # the window is still open: never stored
            continue
        row = {"model": model, "step": step, "end_ts": window_end, "computed": now,
               "n_records": int((summary or {}).get("n", 0)),
               "summary": orjson.dumps(summary or {}).decode()}
        try:
            with engine.begin() as conn:
                conn.execute(delete(mw_table).where(
                    mw_table.c.model == model, mw_table.c.step == step,
                    mw_table.c.end_ts == window_end))
                conn.execute(mw_table.insert().values(**row))
        except IntegrityError:  # another process stored the same window first
            log.debug("window %s/%s/%s stored concurrently", model, step, window_end)
    return history


def performance_series(database: str | Engine, model: str, *, reference: Reference,
                       start: float, end: float, step: int, n_boot: int = 200,
                       min_labels: int = 10) -> Any:
    """Live performance over ``(start, end]``: the whole range's value and interval, and
    ``over_time`` per window of ``step`` seconds holding at least ``min_labels`` labelled
    records (a :class:`~mlwright.monitor.performance.Performance`, None when the model has
    no target or no record in the range)."""
    from mlwright.monitor.performance import join_feedback, live_performance
    from mlwright.store import WindowSpec, window_filter

    engine = open_database(database) if isinstance(database, str) else database
    edges = window_edges(start, end, step)
    span = edges[-1] - edges[0]
    where = window_filter(engine, model, WindowSpec(f"{span:g}s", seconds=span), end=edges[-1])
    if where is None or reference.contract.target is None:
        return None
    return live_performance(engine, None, reference, joined=join_feedback(engine, where),
                            n_boot=n_boot, edges=edges, min_labels=min_labels)
