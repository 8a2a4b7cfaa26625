"""The loop-trigger suite: every :class:`~mlwright.loop._base.Trigger` is built from a
project's config, stays quiet while nothing happens, fires on its own evidence with a
reason and JSON evidence, and does not fire again on the same evidence once acknowledged.

A trigger is tested once :data:`CASES` says how to configure it and how to provoke it (one
line). The world is real: the project database, files, the prediction log with feedback
written with the server's own entry classes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from mlwright.config import ProjectConfig
from mlwright.loop._base import TRIGGERS, LoopContext, Trigger, TriggerResult

__all__ = ["CASES", "TriggerCase", "TriggerConformance", "log_predictions", "project"]


@dataclass(frozen=True)
class TriggerCase:
    """How to test one trigger: ``settings(folder)`` are its ``loop.*`` settings,
    ``quiet(config)`` a context in which nothing happened, ``provoke(config)`` changes the
    world and returns the context that must fire."""

    name: str
    provoke: Callable[[ProjectConfig], LoopContext]
    settings: Callable[[Path], dict[str, Any]] = field(default=lambda _folder: {})
    quiet: Callable[[ProjectConfig], LoopContext] = field(default=LoopContext)


def project(folder: Path, name: str, **loop: Any) -> ProjectConfig:
    """A project in ``folder`` whose loop uses only the trigger ``name``."""
    return ProjectConfig.model_validate({
        "name": "churn", "data": {"source": str(folder / "data.csv"), "target": "churn"},
        "store": {"root": str(folder / ".mlwright")}, "loop": {"triggers": [name], **loop}})


def log_predictions(config: ProjectConfig, labels: list[str], proba_yes: np.ndarray) -> None:
    """Write one logged request per label (a binary churn model's answer) and its label as
    feedback, as the server writes them."""
    from mlwright.serve.logwriter import FeedbackEntry, PredictionEntry
    from mlwright.store import feedback, open_database, predictions

    engine = open_database(config.store.database_url())
    now = time.time()
    rows: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    for i, (label, p) in enumerate(zip(labels, proba_yes, strict=True)):
        rid = uuid.uuid4().hex
        rows.extend(PredictionEntry(
            request_id=rid, ts=now + i * 1e-3, model=config.name, version="1",
            role="champion", records=[{"tenure": i}], keys=None,
            predictions=["Yes" if p >= 0.5 else "No"], proba=[[1 - float(p), float(p)]],
            latency_ms=1.0, status=200).rows())
        items.append({"request_id": rid, "row": 0, "key": None, "label": label, "ts": now})
    with engine.begin() as conn:
        conn.execute(predictions.insert(), rows)
        conn.execute(feedback.insert(), FeedbackEntry(items).rows())


def _labels(n: int) -> list[str]:
    from mlwright.datasets import load_suite

    return [str(v) for v in load_suite("telco_churn", nrows=n)["churn"]]


#: What the monitor returns when nothing moved, and after a shift.
CALM = {"dataset_drift": False, "drifted_features": [], "drift_share": 0.0}
MOVED = {"dataset_drift": True, "drifted_features": ["tenure", "contract"], "drift_share": 0.6}


def _drift_quiet(config: ProjectConfig) -> LoopContext:
    return LoopContext(config, monitor=lambda: CALM)


def _drift_provoke(config: ProjectConfig) -> LoopContext:
    labels = _labels(20)  # the monitor saw these predictions drift
    log_predictions(config, labels, np.full(len(labels), 0.3))
    return LoopContext(config, monitor=lambda: MOVED)


#: The champion as the performance trigger sees it: its version, validation score, classes.
CHAMPION = SimpleNamespace(version="1", task="binary", classes=["No", "Yes"],
                           metrics={"metric": "roc_auc", "cv_score": 0.8})


def _performance_quiet(config: ProjectConfig) -> LoopContext:
    return LoopContext(config, champion=CHAMPION)


def _performance_provoke(config: ProjectConfig) -> LoopContext:
    # Live answers that contradict the labels: the live AUC collapses below 0.8 - drop.
    labels = _labels(150)
    log_predictions(config, labels, np.where(np.asarray(labels) == "Yes", 0.1, 0.9))
    return LoopContext(config, champion=CHAMPION)


def _new_data_settings(folder: Path) -> dict[str, Any]:
    incoming = folder / "incoming"
    incoming.mkdir(exist_ok=True)
    (incoming / "a.csv").write_text("tenure,churn\n1,No\n")
    return {"new_data": str(incoming / "*.csv")}


def _new_data_provoke(config: ProjectConfig) -> LoopContext:
    incoming = Path(str(config.loop.new_data)).parent
    (incoming / "b.csv").write_text("tenure,churn\n2,Yes\n")
    return LoopContext(config)


def _webhook_provoke(config: ProjectConfig) -> LoopContext:
    from mlwright.loop.triggers import request_retrain

    request_retrain(config.store.database_url(), reason="conformance", actor="tests")
    return LoopContext(config)


#: registered trigger name -> how to configure and provoke it.
CASES: dict[str, TriggerCase] = {c.name: c for c in [
    TriggerCase("drift", _drift_provoke, quiet=_drift_quiet),
    TriggerCase("performance", _performance_provoke,
                settings=lambda _f: {"min_feedback": 100}, quiet=_performance_quiet),
    TriggerCase("schedule", lambda config: LoopContext(config, now=time.time() + 7200),
                settings=lambda _f: {"schedule": "1h"}),
    TriggerCase("new_data", _new_data_provoke, settings=_new_data_settings),
    TriggerCase("webhook", _webhook_provoke),
]}


def _check_result(trigger: Trigger, result: TriggerResult) -> None:
    assert isinstance(result, TriggerResult)
    assert result.name == trigger.name and isinstance(result.fired, bool)
    assert isinstance(result.reason, str) and result.reason.strip()
    assert isinstance(result.evidence, dict)
    json.dumps(result.to_dict(), allow_nan=False)  # goes to the audit log as JSON


class TriggerConformance:
    """Behaviour every trigger must have. Needs a ``trigger_case`` fixture (a
    :class:`TriggerCase`); ``tmp_path`` is pytest's."""

    def _build(self, case: TriggerCase, tmp_path: Path) -> tuple[ProjectConfig, Trigger]:
        from mlwright.loop._base import build_triggers

        config = project(tmp_path, case.name, **case.settings(tmp_path))
        (trigger,) = build_triggers(config)
        return config, trigger

    def test_is_built_from_the_config(self, trigger_case: TriggerCase, tmp_path: Path) -> None:
        _, trigger = self._build(trigger_case, tmp_path)
        assert isinstance(trigger, Trigger) and trigger.name == trigger_case.name
        if trigger_case.name in TRIGGERS:
            assert isinstance(trigger, TRIGGERS.get(trigger_case.name))

    def test_stays_quiet_while_nothing_happens(self, trigger_case: TriggerCase,
                                               tmp_path: Path) -> None:
        config, trigger = self._build(trigger_case, tmp_path)
        for _ in range(2):  # the first look may only record what is there
            result = trigger.check(trigger_case.quiet(config))
            _check_result(trigger, result)
            assert not result.fired, result.reason

    def test_fires_on_its_evidence_once(self, trigger_case: TriggerCase,
                                        tmp_path: Path) -> None:
        config, trigger = self._build(trigger_case, tmp_path)
        trigger.check(trigger_case.quiet(config))
        ctx = trigger_case.provoke(config)
        result = trigger.check(ctx)
        _check_result(trigger, result)
        assert result.fired, result.reason
        assert result.evidence, "a fired trigger says why, for the audit log"
        trigger.acknowledge(ctx, result)
        again = trigger.check(ctx)
        _check_result(trigger, again)
        assert not again.fired, f"fired twice on the same evidence: {again.reason}"
