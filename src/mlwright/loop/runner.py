"""One pass of the loop (``run_once``) and the decisions it takes.

A pass: (1) if the champion was promoted and its rollback window of labelled rows is
complete, keep it or roll back; (2) check the triggers; (3) if one fired, retrain in a
worker process, (4) compare the challenger with the champion on the held-out recent and
holdout rows, (5) promote, keep in shadow or discard, with every step in the audit log.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mlwright._logging import get_logger
from mlwright.exceptions import RegistryError
from mlwright.loop._base import LoopContext, TriggerResult, build_triggers
from mlwright.loop.compare import Decision, compare, decide
from mlwright.loop.jobs import ACTOR, RetrainResult, audit, start_retrain

__all__ = ["PassResult", "act", "check_rollback", "default_monitor", "evaluate_challenger",
           "open_registry", "run_once"]

log = get_logger(__name__)

#: How a refusal names a check that did not pass (others: "not " + the check's name).
_FAILED = {"no_worse_slice": "a slice is worse", "enough_rows": "too few rows"}


def open_registry(config: Any) -> Any:
    from mlwright.registry.core import Registry

    return Registry(config.store.resolved_tracking_uri(),
                    database_url=config.store.database_url())


def _champion(registry: Any, name: str) -> Any:
    try:
        return registry.load(f"{name}@champion")
    except RegistryError:
        return None


def _sign(metric: str | None, task: str) -> float:
    from mlwright.data.kinds import Task
    from mlwright.scoring import get_metric

    return 1.0 if get_metric(metric, Task(task)).greater_is_better else -1.0


def _metric_of(config: Any, model: Any) -> str | None:
    if config.train.metric != "auto":
        return str(config.train.metric)
    return (model.metrics or {}).get("metric") if model is not None else None


def _live(config: Any, model: Any, *, n: int, since: float | None = None) -> dict[str, Any]:
    """A version's live metric over its latest ``n`` labelled answers as champion."""
    from mlwright.loop.feedback import labelled_rows
    from mlwright.scoring import live_score

    rows = labelled_rows(config.store.database_url(), config.name, roles=("champion",),
                         version=str(model.version), since=since, limit=n)
    metric = _metric_of(config, model)
    score, count = live_score(rows, task=model.task, classes=model.classes, metric=metric)
    return {"version": str(model.version), "metric": metric,
            "score": None if not math.isfinite(score) else score, "n": count}


# --------------------------------------------------------------------------- deciding

def evaluate_challenger(config: Any, registry: Any, version: str, eval_data: pd.DataFrame, *,
                        champion: Any = None) -> tuple[Decision, Any]:
    """Compare ``version`` with the champion on ``eval_data`` and decide (not acted on)."""
    from mlwright.loop.holdout import PART

    loop = config.loop
    champion = champion if champion is not None else _champion(registry, config.name)
    challenger = registry.load(f"{config.name}/{version}")
    comparison = compare(champion, challenger, eval_data, target=config.data.target,
                         metric=_metric_of(config, champion), margin=loop.margin,
                         n_boot=loop.bootstrap, seed=config.train.seed,
                         guarded_slices=loop.guarded_slices,
                         min_slice_rows=loop.min_slice_rows,
                         slice_tolerance=loop.slice_tolerance,
                         part_column=PART if PART in eval_data.columns else None)
    decision = decide(comparison, alpha=loop.alpha, slice_tolerance=loop.slice_tolerance,
                      min_rows=loop.min_feedback, on_refuse=loop.on_refuse)
    return decision, champion


def act(config: Any, registry: Any, decision: Decision, version: str, *, champion: Any,
        context: dict[str, Any] | None = None) -> str:
    """Carry out ``decision`` for challenger ``version``; returns what was done."""
    name = config.name
    evidence = {**decision.to_dict(), **(context or {})}
    summary = "; ".join(decision.reasons[:2])
    if decision.promote:
        evidence["champion_live"] = _live(config, champion, n=config.loop.rollback_window)
        previous = registry.promote(name, version, actor=ACTOR,
                                    reason=f"challenger better: {summary}", evidence=evidence)
        if config.serve.shadow and previous is not None:
            # The old champion answers in shadow during the rollback window, so the rollback
            # check compares both on the very same live requests.
            registry.set_alias(name, "challenger", previous, actor=ACTOR,
                               reason="previous champion shadowed for the rollback window")
        log.info("promoted %s/%s over %s", name, version, previous)
        return "promoted"
    # The checks are named for what passing means ("significant"): say what did not pass.
    failed = [_FAILED.get(k, f"not {k.replace('_', ' ')}")
              for k, ok in decision.checks.items() if not ok]
    audit(config, "refuse", version, from_version=str(champion.version) if champion else None,
          reason=f"refused ({', '.join(failed)}); kept as {decision.action}: {summary}",
          evidence=evidence)
    if decision.action == "discard":
        registry.delete(name, version, actor=ACTOR, reason="refused challenger discarded")
        return "discarded"
    return "shadow"


# --------------------------------------------------------------------------- rollback

def _last_promotion(config: Any) -> dict[str, Any] | None:
    """The latest promotion not yet settled (no rollback, keep or newer promotion after it)."""
    from mlwright.registry.audit import AuditLog

    entries = AuditLog(config.store.database_url()).entries(config.name)
    for entry in reversed(entries):
        if entry["action"] in ("rollback", "keep"):
            return None
        if entry["action"] == "promote":
            return entry
    return None


def check_rollback(config: Any, registry: Any) -> dict[str, Any]:
    """Roll the champion back when, over ``loop.rollback_window`` labelled rows since its
    promotion, it did worse than the champion it replaced (on the same requests when that
    one answered in shadow, else against its recorded live score)."""
    from mlwright.loop.feedback import labelled_rows
    from mlwright.scoring import live_score

    entry = _last_promotion(config)
    if entry is None or not entry.get("from_version"):
        return {"action": "none", "reason": "no promotion to watch"}
    name, new_v, old_v = config.name, str(entry["version"]), str(entry["from_version"])
    try:
        current = registry.resolve(f"{name}@champion")[1]
    except RegistryError:
        return {"action": "none", "reason": "no champion"}
    if current != new_v:
        return {"action": "none", "reason": f"champion is {current}, not {new_v}"}
    window = config.loop.rollback_window
    db = config.store.database_url()
    rows = labelled_rows(db, name, roles=("champion",), version=new_v, since=entry["ts"])
    if len(rows) < window:
        return {"action": "waiting", "reason": f"{len(rows)} of {window} labelled rows since "
                f"{name}/{new_v} was promoted", "n": len(rows)}
    rows = rows.iloc[:window]
    new_model = registry.load(f"{name}/{new_v}")
    metric = _metric_of(config, new_model)
    task, classes = new_model.task, new_model.classes
    sign = _sign(metric, task)
    new_score, n = live_score(rows, task=task, classes=classes, metric=metric)
    evidence: dict[str, Any] = {"metric": metric, "window": window, "new_version": new_v,
                                "old_version": old_v, "promotion_audit_id": entry["id"]}
    shadow = labelled_rows(db, name, roles=("shadow", "challenger"), version=old_v,
                           since=entry["ts"])
    key = ["_mw_request_id", "_mw_row"]
    paired = rows.merge(shadow[[*key, "_mw_proba", "_mw_prediction"]], on=key,
                        suffixes=("", "_old")) if len(shadow) else pd.DataFrame()
    old_score: float | None = None
    if len(paired) >= min(window, config.loop.min_feedback):
        old_rows = paired.drop(columns=["_mw_proba", "_mw_prediction"]).rename(
            columns={"_mw_proba_old": "_mw_proba", "_mw_prediction_old": "_mw_prediction"})
        new_score, n = live_score(paired, task=task, classes=classes, metric=metric)
        old_score, _ = live_score(old_rows, task=task, classes=classes, metric=metric)
        evidence["basis"] = "shadow predictions of the old champion on the same requests"
    else:
        ev = entry.get("evidence") or {}
        recorded = (ev.get("champion_live") or {}).get("score")
        if recorded is None:
            recorded = ((ev.get("comparison") or {}).get("parts", {}).get("recent") or {}
                        ).get("champion")
            evidence["basis"] = "the old champion's score on the comparison's recent rows"
        else:
            evidence["basis"] = "the old champion's live score recorded at promotion"
        old_score = recorded
    evidence.update({"new_score": new_score, "old_score": old_score, "n": n})
    if old_score is None or not math.isfinite(new_score):
        audit(config, "keep", new_v, from_version=old_v, evidence=evidence,
              reason="no score of the old champion to compare with; kept")
        return {"action": "keep", **evidence}
    if sign * (new_score - float(old_score)) < 0:
        target = registry.rollback(
            name, actor=ACTOR, evidence=evidence,
            reason=f"live {metric} of {new_v} ({new_score:.4g}) fell below {old_v}'s "
                   f"({float(old_score):.4g}) over {n} labelled rows")
        log.warning("rolled %s back from %s to %s", name, new_v, target)
        return {"action": "rollback", "to": target, **evidence}
    audit(config, "keep", new_v, from_version=old_v, evidence=evidence,
          reason=f"live {metric} of {new_v} ({new_score:.4g}) holds against {old_v}'s "
                 f"({float(old_score):.4g}) over {n} labelled rows")
    return {"action": "keep", **evidence}


# --------------------------------------------------------------------------- a pass

@dataclass
class PassResult:
    triggers: list[TriggerResult] = field(default_factory=list)
    rollback: dict[str, Any] = field(default_factory=dict)
    retrain: RetrainResult | None = None
    decision: Decision | None = None
    action: str = "none"              # none | paused | promoted | shadow | discarded | failed
    seconds: float = 0.0

    @property
    def fired(self) -> list[str]:
        return [t.name for t in self.triggers if t.fired]

    def to_dict(self) -> dict[str, Any]:
        return {"triggers": [t.to_dict() for t in self.triggers], "fired": self.fired,
                "rollback": self.rollback,
                "retrain": None if self.retrain is None else self.retrain.to_dict(),
                "decision": None if self.decision is None else self.decision.to_dict(),
                "action": self.action, "seconds": self.seconds}


def default_monitor(config: Any, champion: Any) -> Callable[[], Any] | None:
    """The monitor's report for the champion's current window (None without traffic)."""
    if champion is None:
        return None

    def monitor() -> Any:
        from mlwright.exceptions import MonitorError
        from mlwright.monitor.core import run_monitor

        try:
            return run_monitor(config.store.database_url(), config.name,
                               reference=champion.source, config=config.monitor,
                               version=str(champion.version))
        except MonitorError as exc:
            log.info("no monitor result: %s", exc)
            return None

    return monitor


def run_once(config: Any, *, force: str | None = None, data: pd.DataFrame | None = None,
             monitor: Callable[[], Any] | None = None, registry: Any = None,
             on_step: Callable[[str, Any], None] | None = None,
             stop: threading.Event | None = None, **train_options: Any) -> PassResult:
    """One pass of the loop (see the module docstring); nothing while the loop is paused
    (:mod:`mlwright.loop.pause`), unless ``force`` (a retrain asked for by hand).

    Args:
        force: retrain whatever the triggers say, with this reason (``mlwright retrain``).
        data: the source table (default: read ``config.data``).
        monitor: computes the monitor's current result (for the drift trigger).
        on_step: called with (step, value) as the pass goes, for progress output.
        stop: when set during a retrain, the worker is killed and the pass ends.
        train_options: time_budget, families, n_trials, seed for the retrain.
    """
    from mlwright.loop.pause import loop_paused

    started = time.monotonic()
    step = on_step or (lambda _s, _v: None)
    result = PassResult()
    paused = loop_paused(config.store.database_url(), config.name)
    if paused is not None and force is None:
        result.action = "paused"
        step("paused", paused)
        return result
    registry = registry if registry is not None else open_registry(config)
    result.rollback = check_rollback(config, registry)
    step("rollback", result.rollback)
    champion = _champion(registry, config.name)
    ctx = LoopContext(config, champion=champion,
                      monitor=monitor or default_monitor(config, champion))
    triggers = build_triggers(config)
    result.triggers = [t.check(ctx) for t in triggers]
    step("triggers", result.triggers)
    fired = [(t, r) for t, r in zip(triggers, result.triggers, strict=True) if r.fired]
    if force is not None:
        result.triggers.append(TriggerResult("manual", True, force))
    elif not fired:
        result.seconds = time.monotonic() - started
        return result
    for trigger, r in fired:
        trigger.acknowledge(ctx, r)
    reason = force or "; ".join(r.reason for _, r in fired)
    since = None
    promo = _last_promotion(config)
    if promo is not None:
        since = float(promo["ts"])
    job = start_retrain(config, data=data, reason=reason,
                        evidence={t.name: t.to_dict() for t in result.triggers if t.fired},
                        since=since, **train_options)
    step("retrain_started", job)
    if stop is not None:
        while job.running() and not stop.is_set():
            stop.wait(0.5)
        if stop.is_set() and job.running():
            job.kill()  # safe: nothing is registered until the worker has finished
    result.retrain = job.wait()
    step("retrain", result.retrain)
    if not result.retrain.ok or result.retrain.version is None:
        result.action = "failed"
    elif champion is None or result.retrain.alias == "champion":
        result.action = "promoted"  # the first model: nothing to compare with
    else:
        decision, champion = evaluate_challenger(config, registry, result.retrain.version,
                                                 job.eval_data, champion=champion)
        result.decision = decision
        step("decision", decision)
        result.action = act(config, registry, decision, result.retrain.version,
                            champion=champion, context={"job": job.job_id,
                                                        "trigger": reason,
                                                        "data": job.info.get("data")})
    result.seconds = time.monotonic() - started
    step("done", result)
    return result
