"""What the dashboard shows, read through the stages that own it: the registry (versions,
aliases, lineage, run metrics, audit log), the monitor's window history (traffic, drift,
quality) and live performance, the monitor's alerts and the loop's pause flag.

Nothing here queries a table of its own: each figure comes from the function the CLI or
the server uses. What does not change (a version's lineage and run metrics, a reference)
is kept in memory; the window history is computed once by the monitor and kept in the
database; live performance is memoized on the log's and the feedback's last ids.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from mlwright._logging import get_logger
from mlwright.exceptions import MlwrightError

__all__ = ["RANGES", "Dashboard", "TimeRange"]

#: The time-range selector's choices: label -> seconds (None: the whole log).
RANGES: dict[str, float | None] = {
    "5m": 300, "1h": 3600, "6h": 6 * 3600, "1d": 86400, "7d": 7 * 86400,
    "30d": 30 * 86400, "365d": 365 * 86400, "all": None}
log = get_logger(__name__)

#: Windows computed for one panel request at most (a first view of a long range fills the
#: rest on later requests instead of holding one for minutes).
MAX_COMPUTE = 400


@dataclass(frozen=True)
class TimeRange:
    label: str
    start: float
    end: float          # the end of the last closed window
    step: int


class _Memo:
    """A small LRU of computed values (thread-safe; the panels are served in threads)."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        return None

    def put(self, key: Any, value: Any) -> Any:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value


class Dashboard:
    """The dashboard's reads for one project (database + registry)."""

    def __init__(self, database_url: str, tracking_uri: str | None = None, *,
                 monitor_config: Any = None, list_ttl: float = 2.0) -> None:
        from mlwright.registry.core import Registry
        from mlwright.store import open_database

        self.database_url = database_url
        self.engine = open_database(database_url)
        self.registry = Registry(tracking_uri, database_url=database_url)
        self.monitor_config = monitor_config
        self.list_ttl = list_ttl
        self._memo = _Memo()
        self.fragments = _Memo(64)  # rendered panels (ui.app), by what they were drawn from
        self._locks: dict[Any, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def _lock(self, key: Any) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(key, threading.Lock())

    # -- registry ------------------------------------------------------------------------

    def versions(self, name: str | None = None) -> list[Any]:
        """Every registered version (of ``name``), newest first; re-read after a few
        seconds (aliases move)."""
        key = ("list", name)
        hit = self._memo.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.list_ttl:
            return list(hit[1])
        return list(self._memo.put(key, (time.monotonic(), self.registry.list(name)))[1])

    def forget_versions(self) -> None:
        """After an alias moved: the next read goes to the registry."""
        for name in {None, *(v.name for v in self.versions())}:
            self._memo.put(("list", name), (float("-inf"), []))

    def model_names(self) -> list[str]:
        return sorted({v.name for v in self.versions()})

    def details(self, name: str, version: str) -> dict[str, Any]:
        """A version's lineage (without loading the model) and run metrics, paired with
        their intervals: {"lineage": ..., "metrics": [{name, value, low, high}]}."""
        key = ("details", name, version)
        hit = self._memo.get(key)
        if hit is not None:
            return dict(hit)
        lineage = self.registry.lineage(f"{name}/{version}", contract=False)
        raw = self.registry.run_metrics(self.registry.show(f"{name}/{version}"))
        return self._memo.put(key, {"lineage": lineage, "metrics": _paired(raw)})

    def champion(self, name: str) -> str | None:
        for v in self.versions(name):
            if "champion" in v.aliases:
                return str(v.version)
        return None

    def reference(self, name: str) -> Any:
        """The champion's monitoring reference (run folder), loaded once per version."""
        from mlwright.monitor.reference import load_reference

        version = self.champion(name)
        if version is None:
            raise MlwrightError(f"Model {name!r} has no champion to monitor against; promote "
                                f"a version with 'mlwright models promote {name} VERSION'.")
        key = ("reference", name, version)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        folder = self.registry.run_folder(f"{name}/{version}")
        return self._memo.put(key, load_reference(folder))

    def offline(self, name: str) -> dict[str, Any] | None:
        """The champion's offline (cross-validated) score with its interval."""
        version = self.champion(name)
        if version is None:
            return None
        details = self.details(name, version)
        lineage = details["lineage"]
        metric = lineage.get("metric")
        out: dict[str, Any] = {"version": version, "metric": metric,
                               "value": lineage.get("cv_score"), "low": None, "high": None}
        for m in details["metrics"]:
            if m["name"] == f"eval.oof.metrics.{metric}" and m["low"] is not None:
                out.update(value=m["value"], low=m["low"], high=m["high"])
        return out

    # -- time ----------------------------------------------------------------------------

    def time_range(self, name: str, label: str) -> TimeRange | None:
        """The closed windows of the chosen range (None: nothing logged yet)."""
        from mlwright.monitor.history import log_span, pick_step

        span = log_span(self.engine, name)
        if span is None:
            return None
        now = time.time()
        seconds = RANGES.get(label)
        start = now - seconds if seconds is not None else span[0]
        step = pick_step(max(now - start, 1.0))
        # Whole windows, the last one closed (decisions after the traffic are in range too):
        # the same range until the next window closes, so what is memoized on it is reused.
        end = (now // step) * step
        start = min((start // step) * step, end - step)
        return TimeRange(label if label in RANGES else "all", start, end, step)

    def history(self, name: str, window: TimeRange) -> Any:
        """The monitor's windows of the range (computed once, then read)."""
        from mlwright.monitor.history import window_history

        key = ("history", name, window)
        hit = self._memo.get(key)
        if hit is not None:  # settled windows do not change: no read at all
            return hit
        with self._lock(("history", name, window.step)):
            history = window_history(self.engine, name, reference=self.reference(name),
                                     start=window.start, end=window.end, step=window.step,
                                     config=self.monitor_config, max_compute=MAX_COMPUTE)
        if history.settled:
            self._memo.put(key, history)
        return history

    def performance(self, name: str, window: TimeRange) -> Any:
        """Live performance of the range per window. Computed once per range; when the log
        or the feedback grew since, the last result is answered and a new one computed in
        the background (labels arrive late and all the time: a view never waits for the
        join over a year of them once it has been done)."""
        from sqlalchemy import func, select

        from mlwright.store import feedback, predictions

        with self.engine.connect() as conn:
            marks = (conn.execute(select(func.max(predictions.c.id))).scalar(),
                     conn.execute(select(func.max(feedback.c.id))).scalar())
        key = ("performance", name, window, self.champion(name))
        hit = self._memo.get(key)
        if hit is None:
            with self._lock(key):
                hit = self._memo.get(key)
                if hit is None:
                    return self._performance(name, window, key, marks)
        if hit[1] != marks and self._lock(("refresh", key)).acquire(blocking=False):
            def refresh() -> None:
                try:
                    self._performance(name, window, key, marks)
                except Exception:  # the last result stays; the next view tries again
                    log.exception("could not refresh the live performance of %s", name)
                finally:
                    self._lock(("refresh", key)).release()

            threading.Thread(target=refresh, name="mlwright-ui-performance",
                             daemon=True).start()
        return hit[0]

    def _performance(self, name: str, window: TimeRange, key: Any, marks: Any) -> Any:
        from mlwright.monitor.history import performance_series

        perf = performance_series(self.engine, name, reference=self.reference(name),
                                  start=window.start, end=window.end, step=window.step)
        self._memo.put(key, (perf, marks))
        return perf

    # -- decisions -----------------------------------------------------------------------

    def decisions(self, name: str, window: TimeRange) -> list[dict[str, Any]]:
        """The audit entries of the range (chart annotations), oldest first; read again
        only when the log has a new entry."""
        key = ("decisions", name, window, self.audit_mark())
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo.put(key, self.registry.audit.entries(
                name, since=window.start, until=window.end, limit=500))
        return list(hit)

    def audit_mark(self) -> int | None:
        """The audit log's last id: what changed when a decision was taken."""
        from sqlalchemy import func, select

        from mlwright.store import audit

        with self.engine.connect() as conn:
            return conn.execute(select(func.max(audit.c.id))).scalar()

    def audit_page(self, name: str, page: int, per_page: int) -> tuple[list[Any], int]:
        return self.registry.audit.page(name, offset=page * per_page, limit=per_page)

    def alerts(self, name: str, since: float) -> list[dict[str, Any]]:
        from mlwright.monitor.alerts import recent_alerts

        return recent_alerts(self.engine, name, since=since)

    def paused(self, name: str) -> dict[str, Any] | None:
        from mlwright.loop.pause import loop_paused

        return loop_paused(self.database_url, name)


def _paired(raw: dict[str, float]) -> list[dict[str, Any]]:
    """Run metrics with their ``.low``/``.high`` intervals folded in, timings and fold
    scores left out."""
    out = []
    for key in sorted(raw):
        if key.endswith((".low", ".high")) or key.startswith("time_") or "_fold" in key:
            continue
        out.append({"name": key.removesuffix(".value"), "value": raw[key],
                    "low": raw.get(key.removesuffix(".value") + ".low"),
                    "high": raw.get(key.removesuffix(".value") + ".high")})
    return out
