"""The loop reads feedback labels as the monitor does, by the contract's rules (issue 14):
integer classes logged as 10.0, unmatched feedback, a poisoned regression label, and the
exit codes and strict JSON of the loop's commands. Real suite tables and models."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import mlwright as mw
from mlwright.config import DataConfig, LoopConfig, ProjectConfig, StoreConfig, render_config
from mlwright.datasets import load_suite
from mlwright.loop import LoopContext
from mlwright.loop.triggers import PerformanceTrigger

CLASS_CODES = {"VF": 10, "F": 20, "M": 30, "L": 40}


def _strict(text: str) -> Any:
    def refuse(token: str) -> Any:
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def _log(config: ProjectConfig, model: Any, version: str, rows: pd.DataFrame, target: str,
         labels: list[Any], extra_feedback: list[dict[str, Any]] = ()) -> list[str]:
    """Score ``rows`` and write them with ``labels`` as feedback, exactly as a server before
    issue 14 wrote them (no label parsing): one request per row."""
    from mlwright.serve.logwriter import FeedbackEntry, PredictionEntry
    from mlwright.store import feedback, open_database, predictions

    engine = open_database(config.store.database_url())
    X = rows.drop(columns=[target])
    pred = model.predict(X)
    proba = model.predict_proba(X) if str(model.task) != "regression" else None
    ids = [uuid.uuid4().hex for _ in range(len(rows))]
    now = time.time()
    records = X.astype(object).where(X.notna(), None).to_dict(orient="records")
    pred_rows: list[dict[str, Any]] = []
    for i, record in enumerate(records):
        pred_rows.extend(PredictionEntry(
            request_id=ids[i], ts=now + i * 1e-3, model=config.name, version=version,
            role="champion", records=[record], keys=None, predictions=[pred[i]],
            proba=None if proba is None else [list(map(float, proba[i]))], latency_ms=1.0,
            status=200).rows())
    items = [{"request_id": ids[i], "row": 0, "key": None, "label": label, "ts": now + 1}
             for i, label in enumerate(labels)]
    items += [{"ts": now + 1, "row": 0, "key": None, "request_id": None, **f}
              for f in extra_feedback]
    with engine.begin() as conn:
        conn.execute(predictions.insert(), pred_rows)
        conn.execute(feedback.insert(), FeedbackEntry(items).rows())
    return ids


def _project(tmp_path: Path, name: str, source: pd.DataFrame, target: str) -> ProjectConfig:
    path = tmp_path / f"{name}.csv"
    source.to_csv(path, index=False)
    config = ProjectConfig(name=name, data=DataConfig(source=str(path), target=target),
                           store=StoreConfig(root=tmp_path / ".mlwright"),
                           loop=LoopConfig(triggers=["performance"], min_feedback=50))
    (tmp_path / "mlwright.toml").write_text(render_config(config))
    return config


def _register(config: ProjectConfig, result: Any, folder: Path) -> Any:
    from mlwright.registry.core import Registry
    from mlwright.registry.model import LoadedModel

    registry = Registry(config.store.resolved_tracking_uri(),
                        database_url=config.store.database_url())
    saved = result.save(folder)
    info = registry.register(result, saved, name=config.name, alias="champion")
    return LoadedModel.from_folder(saved, name=config.name, version=info.version), saved


def test_monitor_and_loop_count_the_same_labelled_rows(tmp_path: Path) -> None:
    """Integer classes with labels logged as 10, 10.0 and "10", plus feedback that matches
    nothing: the monitor and the performance trigger count exactly the matched rows."""
    from mlwright.monitor.core import run_monitor

    hpc = load_suite("hpc_jobs", nrows=500)
    hpc["class"] = hpc["class"].map(CLASS_CODES).astype(int)
    config = _project(tmp_path, "jobs", hpc.iloc[:300], "class")
    result = mw.train(hpc.iloc[:300], "class", time_budget=6, families=["linear"],
                      n_trials=1, seed=0)
    champion, folder = _register(config, result, tmp_path / "run")
    live = hpc.iloc[300:420]
    truth = live["class"].tolist()
    mixed = [float(v) if i % 3 == 0 else str(v) if i % 3 == 1 else v
             for i, v in enumerate(truth)]
    ids = _log(config, result, champion.version, live, "class", mixed, extra_feedback=[
        {"request_id": "nobody", "label": 10}, {"key": "no-such-key", "label": 20}])
    _log(config, result, champion.version, live.iloc[:1], "class", [],
         extra_feedback=[{"request_id": ids[0], "row": 99, "label": 10}])
    trigger = PerformanceTrigger(window="5000", min_rows=50, max_drop=1.0).check(
        LoopContext(config, champion=champion))
    report = run_monitor(config.store.database_url(), "jobs", reference=folder,
                         window="5000", version=str(champion.version), alerts=False,
                         n_boot=0)
    assert report.performance is not None
    assert trigger.evidence["n"] == report.performance.n_labelled == len(live)
    assert trigger.evidence["live"] == pytest.approx(report.performance.value)

    from mlwright.loop.holdout import prepare_data

    split = prepare_data(config)
    recent = split.eval[split.eval["_mw_part"] == "recent"]
    assert set(recent["class"].map(type)) <= {int} and len(recent) > 0


@pytest.fixture(scope="module")
def diamonds() -> pd.DataFrame:
    return load_suite("diamonds", nrows=500)


def test_a_poisoned_regression_label_stops_the_retrain_clearly(
        tmp_path: Path, diamonds: pd.DataFrame) -> None:
    config = _project(tmp_path, "prices", diamonds.iloc[:300], "price")
    result = mw.train(diamonds.iloc[:300], "price", time_budget=6, families=["linear"],
                      n_trials=1, seed=0)
    champion, _ = _register(config, result, tmp_path / "run")
    live = diamonds.iloc[300:400]
    labels: list[Any] = live["price"].tolist()
    labels[7] = 1e308   # accepted by the server before issue 14
    _log(config, result, champion.version, live, "price", labels)

    check = PerformanceTrigger(window="5000", min_rows=50).check(
        LoopContext(config, champion=champion))
    assert not check.fired and check.evidence["live"] is None
    assert "needed" not in check.reason and "no finite live" in check.reason

    toml = str(tmp_path / "mlwright.toml")
    out = subprocess.run([sys.executable, "-m", "mlwright", "retrain", "prices", "--config",
                          toml, "--budget", "5"], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    message = " ".join(out.stderr.split())
    assert out.returncode != 0, out.stdout
    assert "Traceback" not in out.stderr and "1e+308" in message and "feedback" in message

    # Without the poisoned label: a pass that fails in the worker exits 1, in strict JSON.
    from sqlalchemy import text

    from mlwright.store import open_database

    with open_database(config.store.database_url()).begin() as conn:
        gone = conn.execute(text("delete from feedback where label like '%e+308%' or "
                                 "label like '%e308%'"))
        assert gone.rowcount == 1
    failed = subprocess.run([sys.executable, "-m", "mlwright", "retrain", "prices",
                             "--config", toml, "--budget", "5", "--families", "nosuchfamily",
                             "--json"], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path)
    assert failed.returncode == 1, (failed.stdout, failed.stderr)
    assert _strict(failed.stdout)["action"] == "failed"
    once = subprocess.run([sys.executable, "-m", "mlwright", "run", toml, "--once", "--json"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert once.returncode == 0, once.stderr
    passed = _strict(once.stdout)
    assert passed["action"] == "none" and passed["triggers"][0]["trigger"] == "performance"
