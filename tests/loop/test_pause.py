"""Pausing the loop (the dashboard's button): a paused pass checks no trigger and changes
nothing, a pending request stays pending, and both the pause and the resume are audited."""

from __future__ import annotations

from typing import Any

from mlwright.loop import loop_paused, pause_loop, request_retrain, resume_loop, run_once
from mlwright.loop.state import StateStore
from mlwright.loop.triggers import WEBHOOK_KEY
from mlwright.registry.audit import AuditLog


def test_a_paused_loop_does_nothing_until_resumed(make_project: Any, weak: Any) -> None:
    config = make_project(weak, traffic=False)
    db = config.store.database_url()
    request_retrain(db, reason="new labels arrived")
    assert loop_paused(db, "churn") is None
    pause_loop(db, "churn", actor="ui:ops", reason="investigating the drift")
    assert loop_paused(db, "churn")["reason"] == "investigating the drift"
    steps: list[str] = []
    result = run_once(config, on_step=lambda step, _: steps.append(step))
    assert result.action == "paused" and result.triggers == [] and result.retrain is None
    assert steps == ["paused"]
    assert StateStore(db).get(WEBHOOK_KEY)["reason"] == "new labels arrived"  # still pending
    resume_loop(db, "churn", actor="ui:ops")
    assert loop_paused(db, "churn") is None
    entries = AuditLog(db).entries("churn")
    assert [(e["action"], e["actor"]) for e in entries[-2:]] == [
        ("loop_paused", "ui:ops"), ("loop_resumed", "ui:ops")]
