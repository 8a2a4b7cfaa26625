"""The built-in triggers: drift, performance, schedule, new_data, webhook."""

from __future__ import annotations

import glob as globlib
import math
import os
from typing import Any

from sqlalchemy import func, select

from mlwright._logging import get_logger
from mlwright.exceptions import ConfigError
from mlwright.loop._base import LoopContext, Trigger, TriggerResult, register_trigger
from mlwright.loop.live import parse_interval
from mlwright.scoring import live_score
from mlwright.store import open_database, parse_window, predictions

__all__ = ["DriftTrigger", "NewDataTrigger", "PerformanceTrigger", "ScheduleTrigger",
           "WebhookTrigger", "request_retrain"]

log = get_logger(__name__)


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _last_prediction_id(ctx: LoopContext) -> int:
    engine = open_database(ctx.database_url)
    with engine.connect() as conn:
        value = conn.execute(select(func.max(predictions.c.id))
                             .where(predictions.c.model == ctx.name)).scalar()
    return int(value or 0)


def _new_rows_since(ctx: LoopContext, after_id: int) -> int:
    engine = open_database(ctx.database_url)
    with engine.connect() as conn:
        value = conn.execute(select(func.count(predictions.c.id)).where(
            predictions.c.model == ctx.name, predictions.c.id > after_id,
            predictions.c.role != "shadow")).scalar()
    return int(value or 0)


class _Watermarked(Trigger):
    """Fires at most once per batch of new predictions: after an acknowledgement it waits
    for ``min_new`` predictions logged after the ones that made it fire."""

    def __init__(self, min_new: int = 200) -> None:
        self.min_new = min_new

    def _key(self) -> str:
        return f"{self.name}.after_id"

    def _fresh(self, ctx: LoopContext) -> tuple[bool, int, int]:
        after = int(ctx.state.get(self._key(), 0) or 0)
        if after == 0:
            return True, after, -1
        new = _new_rows_since(ctx, after)
        return new >= self.min_new, after, new

    def acknowledge(self, ctx: LoopContext, result: TriggerResult) -> None:
        ctx.state.set(self._key(), _last_prediction_id(ctx))


@register_trigger
class DriftTrigger(_Watermarked):
    """Fires when the monitor reports dataset drift (a share of features drifting)."""

    name = "drift"

    @classmethod
    def from_config(cls, config: Any) -> Trigger:
        spec = parse_window(config.monitor.window)
        return cls(min_new=spec.rows if spec.rows is not None else config.loop.min_feedback)

    def check(self, ctx: LoopContext) -> TriggerResult:
        fresh, _after, new = self._fresh(ctx)
        if not fresh:
            return TriggerResult(self.name, False, f"only {new} predictions since the last "
                                 f"drift retrain; waiting for {self.min_new}")
        result = ctx.monitor_result()
        if result is None:
            return TriggerResult(self.name, False, "no monitor result (no predictions yet?)")
        drift = _get(result, "dataset_drift")
        if isinstance(drift, dict):  # a nested summary
            drift = drift.get("drift", drift.get("detected"))
        drifted = _get(result, "drifted_features") or _get(result, "drifted") or []
        share = _get(result, "drift_share")
        evidence = {"dataset_drift": bool(drift), "drifted_features": list(drifted),
                    "drift_share": share}
        if drift:
            return TriggerResult(self.name, True, f"dataset drift: {len(drifted)} features "
                                 f"drifting ({', '.join(map(str, list(drifted)[:5]))})",
                                 evidence)
        return TriggerResult(self.name, False, "no dataset drift", evidence)


@register_trigger
class PerformanceTrigger(_Watermarked):
    """Fires when the champion's live metric (from feedback over the monitoring window) is
    below ``monitor.min_performance``, or worse than its validation score by more than
    ``loop.performance_drop``."""

    name = "performance"

    def __init__(self, window: str = "5000", min_rows: int = 200,
                 min_performance: float | None = None, max_drop: float = 0.05) -> None:
        super().__init__(min_new=min_rows)
        self.window = window
        self.min_rows = min_rows
        self.min_performance = min_performance
        self.max_drop = max_drop

    @classmethod
    def from_config(cls, config: Any) -> Trigger:
        return cls(window=config.monitor.window, min_rows=config.loop.min_feedback,
                   min_performance=config.monitor.min_performance,
                   max_drop=config.loop.performance_drop)

    def check(self, ctx: LoopContext) -> TriggerResult:
        from mlwright.loop.feedback import labelled_rows

        champ = ctx.champion
        if champ is None:
            return TriggerResult(self.name, False, "no champion to watch")
        fresh, after, new = self._fresh(ctx)
        if not fresh:
            return TriggerResult(self.name, False, f"only {new} predictions since the last "
                                 f"performance retrain; waiting for {self.min_new}")
        # The monitor's window of the champion's records (the labelled records the monitor
        # scores), less those before the watermark.
        rows = labelled_rows(ctx.database_url, ctx.name, version=str(champ.version),
                             window=parse_window(self.window), after_id=after or None)
        metric = (champ.metrics or {}).get("metric")
        score, n = live_score(rows, task=champ.task, classes=champ.classes, metric=metric)
        # None, not NaN, without a live score: evidence is printed and stored as JSON.
        evidence: dict[str, Any] = {"metric": metric,
                                    "live": score if math.isfinite(score) else None, "n": n,
                                    "reference": (champ.metrics or {}).get("cv_score"),
                                    "min_performance": self.min_performance,
                                    "max_drop": self.max_drop, "version": str(champ.version)}
        if n < self.min_rows:
            return TriggerResult(self.name, False, f"{n} labelled predictions of the champion; "
                                 f"{self.min_rows} needed", evidence)
        if not math.isfinite(score):  # enough rows, but no score (one class, overflow)
            return TriggerResult(self.name, False, f"{n} labelled predictions of the champion "
                                 f"give no finite live {metric or 'score'} (a single class, "
                                 f"or labels far outside the target's range)", evidence)
        from mlwright.data.kinds import Task
        from mlwright.scoring import get_metric

        better = get_metric(metric, Task(champ.task)).greater_is_better
        sign = 1.0 if better else -1.0
        if self.min_performance is not None and sign * (score - self.min_performance) < 0:
            return TriggerResult(self.name, True, f"live {metric} {score:.4g} is below "
                                 f"monitor.min_performance {self.min_performance:g}", evidence)
        ref = evidence["reference"]
        if ref is not None and sign * (float(ref) - score) > self.max_drop:
            return TriggerResult(self.name, True, f"live {metric} {score:.4g} is worse than the "
                                 f"validation score {float(ref):.4g} by more than "
                                 f"{self.max_drop:g}", evidence)
        return TriggerResult(self.name, False, f"live {metric} {score:.4g} holds up", evidence)


@register_trigger
class ScheduleTrigger(Trigger):
    """Fires every ``loop.schedule`` (e.g. 7d); the first check only starts the clock."""

    name = "schedule"
    key = "schedule.last"

    def __init__(self, every: str = "7d") -> None:
        self.every = every

    @classmethod
    def from_config(cls, config: Any) -> Trigger:
        if not config.loop.schedule:
            raise ConfigError("loop.triggers has 'schedule' but loop.schedule is not set; set "
                              "it to an interval such as 7d or 12h.")
        return cls(every=config.loop.schedule)

    def check(self, ctx: LoopContext) -> TriggerResult:
        seconds = parse_interval(self.every, field="loop.schedule")
        last = ctx.state.get(self.key)
        if last is None:
            ctx.state.set(self.key, ctx.now)
            return TriggerResult(self.name, False, f"schedule started; next in {self.every}")
        due = float(last) + seconds
        evidence = {"last": float(last), "every": self.every, "due": due}
        if ctx.now >= due:
            return TriggerResult(self.name, True, f"scheduled retrain (every {self.every})",
                                 evidence)
        return TriggerResult(self.name, False, f"next scheduled retrain in "
                             f"{(due - ctx.now) / 3600:.1f} h", evidence)

    def acknowledge(self, ctx: LoopContext, result: TriggerResult) -> None:
        ctx.state.set(self.key, ctx.now)


@register_trigger
class NewDataTrigger(Trigger):
    """Fires when files matching a glob appear or change (mtime, size), or when a SQL table
    has rows past a watermark column (``loop.new_data`` = table, ``loop.watermark`` =
    column, in the database of ``data.source``). The first check records what is there."""

    name = "new_data"

    def __init__(self, target: str, watermark: str | None = None,
                 database: str | None = None) -> None:
        self.target = target
        self.watermark = watermark
        self.database = database

    @classmethod
    def from_config(cls, config: Any) -> Trigger:
        if not config.loop.new_data:
            raise ConfigError("loop.triggers has 'new_data' but loop.new_data is not set; set "
                              "it to a file glob (data/*.csv) or a SQL table name (with "
                              "loop.watermark naming its increasing column).")
        database = None
        if config.loop.watermark:
            if "://" not in config.data.source:
                raise ConfigError(
                    f"loop.watermark is set, so loop.new_data ({config.loop.new_data!r}) is a "
                    f"SQL table, but data.source ({config.data.source!r}) is not a database "
                    f"URL. Point data.source at the database, or unset loop.watermark to "
                    f"watch files.")
            database = config.data.source
        return cls(config.loop.new_data, config.loop.watermark, database)

    def _files(self) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for path in sorted(globlib.glob(self.target, recursive=True)):
            if os.path.isfile(path):
                st = os.stat(path)
                out[path] = [st.st_mtime, float(st.st_size)]
        return out

    def _max_watermark(self) -> tuple[Any, int]:
        from sqlalchemy import MetaData, Table, create_engine

        assert self.database is not None and self.watermark is not None
        engine = create_engine(self.database)
        try:
            table = Table(self.target, MetaData(), autoload_with=engine)
            col = table.c[self.watermark]
            with engine.connect() as conn:
                top, count = conn.execute(select(func.max(col), func.count())
                                          .select_from(table)).one()
        except Exception as exc:
            raise ConfigError(
                f"Cannot read {self.watermark!r} of table {self.target!r} in "
                f"{self.database!r} for the new_data trigger: {exc}. Check loop.new_data and "
                f"loop.watermark.") from exc
        finally:
            engine.dispose()
        return top, int(count)

    def check(self, ctx: LoopContext) -> TriggerResult:
        key = f"new_data.{self.target}"
        seen = ctx.state.get(key)
        if self.watermark:
            top, count = self._max_watermark()
            now: Any = {"max": top if top is None or isinstance(top, int | float) else str(top),
                        "count": count}
            if seen is None:
                ctx.state.set(key, now)
                return TriggerResult(self.name, False, f"watching {self.target}.{self.watermark}"
                                     f" past {now['max']!r}")
            if now["max"] is not None and (seen["max"] is None or now["max"] > seen["max"]):
                return TriggerResult(self.name, True, f"new rows in {self.target}: "
                                     f"{self.watermark} {seen['max']!r} -> {now['max']!r}",
                                     {"before": seen, "now": now, "_state": now})
            return TriggerResult(self.name, False, f"no rows past {seen['max']!r}")
        files = self._files()
        if seen is None:
            ctx.state.set(key, files)
            return TriggerResult(self.name, False, f"watching {len(files)} files matching "
                                 f"{self.target!r}")
        changed = sorted(p for p, sig in files.items() if seen.get(p) != sig)
        if changed:
            return TriggerResult(self.name, True, f"{len(changed)} new or changed files: "
                                 f"{', '.join(changed[:3])}", {"files": changed,
                                                              "_state": files})
        return TriggerResult(self.name, False, f"no new files matching {self.target!r}")

    def acknowledge(self, ctx: LoopContext, result: TriggerResult) -> None:
        if "_state" in result.evidence:
            ctx.state.set(f"new_data.{self.target}", result.evidence["_state"])


WEBHOOK_KEY = "webhook.pending"


def request_retrain(database_url: str, *, reason: str = "webhook", actor: str = "",
                    evidence: dict[str, Any] | None = None) -> None:
    """Set the flag the webhook trigger fires on (what ``POST /v1/hooks/retrain`` does)."""
    import time

    from mlwright.loop.state import StateStore

    StateStore(database_url).set(WEBHOOK_KEY, {"reason": reason, "actor": actor,
                                               "ts": time.time(), "evidence": evidence or {}})


@register_trigger
class WebhookTrigger(Trigger):
    """Fires when ``POST /v1/hooks/retrain`` (or :func:`request_retrain`) set its flag."""

    name = "webhook"

    def check(self, ctx: LoopContext) -> TriggerResult:
        pending = ctx.state.get(WEBHOOK_KEY)
        if not pending:
            return TriggerResult(self.name, False, "no retrain requested")
        return TriggerResult(self.name, True, f"retrain requested: {pending.get('reason')}",
                             dict(pending))

    def acknowledge(self, ctx: LoopContext, result: TriggerResult) -> None:
        ctx.state.pop(WEBHOOK_KEY)
