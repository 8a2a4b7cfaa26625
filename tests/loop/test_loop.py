"""The closed loop end to end on telco_churn slices, with a real MLflow registry in tmp_path
and retraining in real worker processes."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlwright.loop import request_retrain, run_once, start_retrain
from mlwright.loop.runner import open_registry
from mlwright.registry.audit import AuditLog

# slow: retrains in worker processes (about a minute a test).
pytestmark = pytest.mark.slow

TARGET = "churn"

FAST = {"time_budget": 12, "families": ["lightgbm", "linear"]}


def _audit(config: Any) -> list[dict[str, Any]]:
    return AuditLog(config.store.database_url()).entries(config.name)


def test_better_challenger_is_promoted(make_project: Any, weak: Any) -> None:
    config = make_project(weak, guarded_slices=["contract"])
    request_retrain(config.store.database_url(), reason="new labels arrived")
    result = run_once(config, **FAST)
    assert result.fired == ["webhook"]
    assert result.retrain is not None and result.retrain.ok, result.retrain
    assert result.decision is not None
    comparison = result.decision.comparison
    assert comparison is not None
    assert result.action == "promoted", result.decision.reasons
    assert comparison.improvement > 0 and comparison.p_value < 0.05
    assert set(comparison.parts) == {"recent", "holdout"}
    registry = open_registry(config)
    assert registry.resolve("churn@champion")[1] == result.retrain.version
    promote = [e for e in _audit(config) if e["action"] == "promote"][-1]
    assert promote["version"] == result.retrain.version and promote["from_version"] == "1"
    evidence = promote["evidence"]
    assert evidence["comparison"]["p_value"] == comparison.p_value
    assert evidence["comparison"]["slices"] and evidence["checks"]["significant"] is True
    assert evidence["champion_live"]["n"] == 100
    started = [e for e in _audit(config) if e["action"] == "retrain_started"]
    assert started and started[-1]["reason"] == "retrain requested: new labels arrived"
    # The webhook flag was consumed: the next pass does not retrain.
    assert run_once(config).retrain is None


def test_worse_challenger_is_never_promoted(make_project: Any, good: Any,
                                             churn: dict[str, pd.DataFrame]) -> None:
    config = make_project(good)
    noisy = churn["source"].copy()
    rng = np.random.default_rng(0)
    idx = rng.choice(len(noisy), size=int(0.4 * len(noisy)), replace=False)
    noisy.loc[idx, TARGET] = rng.permutation(noisy.loc[idx, TARGET].to_numpy())
    result = run_once(config, force="labels partly shuffled", data=noisy, **FAST)
    assert result.retrain is not None and result.retrain.ok
    assert result.action == "shadow"
    assert result.decision is not None and not result.decision.promote
    registry = open_registry(config)
    assert registry.resolve("churn@champion")[1] == "1"
    assert registry.resolve("churn@challenger")[1] == result.retrain.version
    refuse = [e for e in _audit(config) if e["action"] == "refuse"][-1]
    assert refuse["version"] == result.retrain.version and refuse["from_version"] == "1"
    assert refuse["evidence"]["action"] == "shadow"
    assert "p_value" in refuse["evidence"]["comparison"]
    # McNemar counts the discordant rows of the same comparison: their difference is the
    # accuracy gap times the rows compared; a challenger trained on 40% shuffled labels is
    # not right on significantly more of them than the champion.
    comparison = refuse["evidence"]["comparison"]
    mc = comparison["mcnemar"]
    gap = (mc["challenger_accuracy"] - mc["champion_accuracy"]) * comparison["n_rows"]
    assert mc["challenger_only"] - mc["champion_only"] == round(gap)
    assert mc["champion_only"] + mc["challenger_only"] > 0  # the two models differ
    assert mc["p_value"] >= 0.05, mc
    # The reason names what did not pass, as the decision's checks say.
    failed = [k for k, ok in result.decision.checks.items() if not ok]
    assert "significant" in failed, failed  # not significantly better
    assert refuse["reason"].startswith("refused (") and "not significant" in refuse["reason"]
    assert not any(e["action"] == "promote" for e in _audit(config))


def test_refused_challenger_is_discarded_when_configured(make_project: Any, good: Any,
                                                          churn: dict[str, pd.DataFrame]
                                                          ) -> None:
    config = make_project(good, on_refuse="discard", margin=0.5)  # no model gains 0.5 AUC
    result = run_once(config, force="manual", time_budget=20, families=["linear"], n_trials=1)
    assert result.action == "discarded"
    versions = [v.version for v in open_registry(config).list("churn")]
    assert versions == ["1"]
    actions = [e["action"] for e in _audit(config)]
    assert "refuse" in actions and "delete" in actions


def test_killed_worker_leaves_the_champion_serving(make_project: Any, good: Any,
                                                   churn: dict[str, pd.DataFrame]) -> None:
    config = make_project(good)
    job = start_retrain(config, reason="to be killed", time_budget=60,
                        families=["lightgbm", "linear"])
    status = job.folder / "status.json"
    while job.running() and not status.exists():
        time.sleep(0.2)
    assert json.loads(status.read_text())["stage"] == "training"
    os.kill(job.pid, signal.SIGKILL)
    result = job.wait()
    assert result.status == "failed" and result.returncode == -signal.SIGKILL
    registry = open_registry(config)
    infos = registry.list("churn")
    assert [(i.version, i.status) for i in infos] == [("1", "ready")]
    champion = registry.load("churn@champion")
    rows = churn["live"].drop(columns=[TARGET]).head(20)
    assert list(champion.model.predict(rows)) == list(good.predict(rows))
    failed = [e for e in _audit(config) if e["action"] == "retrain_failed"]
    assert failed and "signal 9" in failed[-1]["reason"]
    # And the loop goes on: a new pass retrains and registers a proper version.
    after = run_once(config, force="after the kill", time_budget=20, families=["linear"],
                     n_trials=1)
    assert after.retrain is not None and after.retrain.ok


def test_rollback_when_the_new_champion_does_worse_live(make_project: Any, good: Any,
                                                         weak: Any, traffic: Any,
                                                         churn: dict[str, pd.DataFrame]) -> None:
    log_traffic = traffic
    config = make_project(good, traffic=False, shadow=True)
    registry = open_registry(config)
    folder = weak.save(config.store.root / "weak-run")
    registry.register(weak, folder, name="churn", alias="challenger")
    registry.promote("churn", "2", actor="test", reason="a bad promotion")
    first = run_once(config)
    assert first.rollback["action"] == "waiting"
    live = churn["live"]
    ids = log_traffic(config, weak, "2", live)
    log_traffic(config, good, "1", live, role="shadow", labels=False, request_ids=ids)
    result = run_once(config)
    assert result.rollback["action"] == "rollback", result.rollback
    assert registry.resolve("churn@champion")[1] == "1"
    entry = [e for e in _audit(config) if e["action"] == "rollback"][-1]
    assert entry["version"] == "1" and entry["from_version"] == "2"
    ev = entry["evidence"]
    assert ev["n"] == 100 and ev["basis"].startswith("shadow")
    assert ev["new_score"] < ev["old_score"]
    # Settled: the next pass does not look at that promotion again.
    assert run_once(config).rollback["action"] == "none"
