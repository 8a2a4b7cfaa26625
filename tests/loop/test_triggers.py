"""Triggers against real state: the project database, files, a SQL table, an HTTP webhook."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from mlwright.config import DataConfig, LoopConfig, ProjectConfig, StoreConfig
from mlwright.exceptions import ConfigError
from mlwright.loop import LoopContext, Trigger, TriggerResult, build_triggers, register_trigger
from mlwright.loop.routes import hooks_router
from mlwright.loop.triggers import (
    DriftTrigger,
    NewDataTrigger,
    PerformanceTrigger,
    ScheduleTrigger,
    WebhookTrigger,
)


def _config(tmp_path: Path, **loop: Any) -> ProjectConfig:
    source = loop.pop("source", str(tmp_path / "data.csv"))
    return ProjectConfig(name="churn", data=DataConfig(source=source, target="churn"),
                         store=StoreConfig(root=tmp_path / ".mlwright"),
                         loop=LoopConfig(**loop))


def test_schedule_starts_the_clock_then_fires_when_due(tmp_path: Path) -> None:
    config = _config(tmp_path, triggers=["schedule"], schedule="12h")
    (trigger,) = build_triggers(config)
    assert isinstance(trigger, ScheduleTrigger)
    t0 = 1_000_000.0
    assert not trigger.check(LoopContext(config, now=t0)).fired
    assert not trigger.check(LoopContext(config, now=t0 + 11 * 3600)).fired
    ctx = LoopContext(config, now=t0 + 12 * 3600)
    fired = trigger.check(ctx)
    assert fired.fired and fired.evidence["every"] == "12h"
    trigger.acknowledge(ctx, fired)
    assert not trigger.check(LoopContext(config, now=t0 + 13 * 3600)).fired


def test_new_files_fire_once(tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "a.csv").write_text("x\n1\n")
    config = _config(tmp_path, triggers=["new_data"], new_data=str(folder / "*.csv"))
    (trigger,) = build_triggers(config)
    ctx = LoopContext(config)
    assert not trigger.check(ctx).fired           # the first look records what is there
    assert not trigger.check(ctx).fired
    (folder / "b.csv").write_text("x\n2\n")
    result = trigger.check(ctx)
    assert result.fired and result.evidence["files"] == [str(folder / "b.csv")]
    trigger.acknowledge(ctx, result)
    assert not trigger.check(ctx).fired
    (folder / "a.csv").write_text("x\n1\n3\n")     # grown: size changed
    assert trigger.check(ctx).fired


def test_sql_rows_past_a_watermark_fire(tmp_path: Path) -> None:
    db = tmp_path / "warehouse.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE events (id INTEGER, churn TEXT)")
        conn.executemany("INSERT INTO events VALUES (?, ?)", [(1, "No"), (2, "Yes")])
    config = _config(tmp_path, triggers=["new_data"], new_data="events", watermark="id",
                     source=f"sqlite:///{db}")
    (trigger,) = build_triggers(config)
    assert isinstance(trigger, NewDataTrigger)
    ctx = LoopContext(config)
    assert not trigger.check(ctx).fired
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO events VALUES (3, 'No')")
    result = trigger.check(ctx)
    assert result.fired and result.evidence["now"]["max"] == 3
    trigger.acknowledge(ctx, result)
    assert not trigger.check(ctx).fired


def test_misconfigured_triggers_say_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"loop\.schedule"):
        build_triggers(_config(tmp_path, triggers=["schedule"]))
    with pytest.raises(ConfigError, match="not a trigger"):
        build_triggers(_config(tmp_path, triggers=["sometimes"]))
    with pytest.raises(ConfigError, match="not a database URL"):
        build_triggers(_config(tmp_path, triggers=["new_data"], new_data="t", watermark="id"))


def test_drift_trigger_reads_the_monitor_result(tmp_path: Path) -> None:
    config = _config(tmp_path, triggers=["drift"])
    trigger = DriftTrigger(min_new=10)
    calm = {"dataset_drift": False, "drifted_features": [], "drift_share": 0.0}
    moved = {"dataset_drift": True, "drifted_features": ["tenure", "contract"],
             "drift_share": 0.6}
    assert not trigger.check(LoopContext(config, monitor=lambda: calm)).fired
    result = trigger.check(LoopContext(config, monitor=lambda: moved))
    assert result.fired and result.evidence["drifted_features"] == ["tenure", "contract"]
    assert not trigger.check(LoopContext(config, monitor=lambda: None)).fired


def test_custom_trigger_is_an_extension_point(tmp_path: Path) -> None:
    @register_trigger
    class Always(Trigger):
        name = "always-test"

        def check(self, ctx: LoopContext) -> TriggerResult:
            return TriggerResult(self.name, True, "always", {"n": 1})

    (trigger,) = build_triggers(_config(tmp_path, triggers=["always-test"]))
    assert trigger.check(LoopContext(_config(tmp_path))).fired


def test_performance_trigger_fires_on_a_drop(tmp_path: Path, weak: Any, churn: Any,
                                             traffic: Any) -> None:
    from mlwright.registry.model import LoadedModel

    config = _config(tmp_path, triggers=["performance"], min_feedback=100)
    folder = weak.save(tmp_path / "run")
    champion = LoadedModel.from_folder(folder, name="churn", version="1")
    live = churn["live"]
    traffic(config, weak, "1", live)
    ctx = LoopContext(config, champion=champion)
    holds = PerformanceTrigger(min_rows=100, max_drop=0.5).check(ctx)
    assert not holds.fired and holds.evidence["n"] == len(live)
    # Feedback that contradicts the model: the live AUC collapses.
    flipped = live.assign(churn=live["churn"].map({"Yes": "No", "No": "Yes"}))
    config2 = _config(tmp_path / "b", triggers=["performance"], min_feedback=100)
    traffic(config2, weak, "1", flipped)
    result = PerformanceTrigger(min_rows=100, max_drop=0.05).check(
        LoopContext(config2, champion=champion))
    assert result.fired and result.evidence["live"] < 0.5


def test_the_performance_trigger_scores_the_monitors_window(tmp_path: Path, weak: Any,
                                                            churn: Any, traffic: Any) -> None:
    """The trigger judges the labelled records the monitor reports on: window "400" is the
    last 400 records (100 of them labelled here), not the last 400 labelled records."""
    from mlwright.monitor.core import run_monitor
    from mlwright.registry.model import LoadedModel

    config = _config(tmp_path, triggers=["performance"], min_feedback=50)
    folder = weak.save(tmp_path / "run")
    champion = LoadedModel.from_folder(folder, name="churn", version="1")
    live = churn["live"]
    traffic(config, weak, "1", live.iloc[:300], ts=1.7e9)
    traffic(config, weak, "1", live.iloc[300:], labels=False, ts=1.7e9 + 1)
    result = PerformanceTrigger(window="400", min_rows=50, max_drop=0.5).check(
        LoopContext(config, champion=champion))
    report = run_monitor(config.store.database_url(), "churn", reference=folder,
                         window="400", version="1", alerts=False, n_boot=0)
    assert report.performance is not None
    assert result.evidence["n"] == report.performance.n_labelled == 100
    assert result.evidence["live"] == pytest.approx(report.performance.value)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_webhook_needs_a_key_and_sets_the_flag(tmp_path: Path) -> None:
    from mlwright.serve.keys import create_key

    config = _config(tmp_path, triggers=["webhook"])
    db = config.store.database_url()
    _, key = create_key(db, "ci")
    app = FastAPI()
    app.include_router(hooks_router(db))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/v1/hooks/retrain"
        (trigger,) = build_triggers(config)
        assert isinstance(trigger, WebhookTrigger)
        assert httpx.post(url, json={"reason": "x"}).status_code == 401
        assert httpx.post(url, headers={"X-API-Key": "mlw_wrong"}).status_code == 401
        assert not trigger.check(LoopContext(config)).fired
        ok = httpx.post(url, json={"reason": "new labels in the warehouse"},
                        headers={"Authorization": f"Bearer {key}"})
        assert ok.status_code == 202 and ok.json()["accepted"] is True
        ctx = LoopContext(config)
        result = trigger.check(ctx)
        assert result.fired and "new labels in the warehouse" in result.reason
        trigger.acknowledge(ctx, result)
        assert not trigger.check(ctx).fired
    finally:
        server.should_exit = True
        thread.join(10)
