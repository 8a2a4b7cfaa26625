"""POST /v1/feedback reads labels by the contract's rules for the target and reports which
items match a prediction (issue 14): real suite tables, real models, a real database."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from serve_helpers import records

import mlwright as mw
from mlwright.datasets import load_suite
from mlwright.serve import create_app

#: hpc_jobs' classes as integers: the multiclass table "whose classes are integers".
CLASS_CODES = {"VF": 10, "F": 20, "M": 30, "L": 40}


def _train(df: pd.DataFrame, target: str, folder: Path) -> Path:
    result = mw.train(df, target, time_budget=6, families=["linear"], n_trials=1, seed=0)
    return Path(result.save(folder))


@pytest.fixture(scope="module")
def tables() -> dict[str, tuple[pd.DataFrame, str]]:
    hpc = load_suite("hpc_jobs", nrows=400)
    hpc["class"] = hpc["class"].map(CLASS_CODES).astype(int)
    telco = load_suite("telco_churn", nrows=400)
    telco["churn"] = telco["churn"] == "Yes"
    return {"integer": (hpc, "class"), "boolean": (telco, "churn"),
            "regression": (load_suite("diamonds", nrows=400), "price")}


@pytest.fixture(scope="module")
def runs(tables: dict[str, tuple[pd.DataFrame, str]],
         tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("feedback-runs")
    return {kind: _train(df.iloc[:300], target, root / kind)
            for kind, (df, target) in tables.items()}


def _serve(kind: str, runs: dict[str, Path], tables: dict[str, tuple[pd.DataFrame, str]],
           db: Path) -> tuple[TestClient, str, list[dict[str, Any]]]:
    df, target = tables[kind]
    rows = records(df.iloc[300:305].drop(columns=[target]))
    client = TestClient(create_app(str(runs[kind]), database_url=f"sqlite:///{db}",
                                   host="127.0.0.1"))
    return client, target, rows


def _stored(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("select request_id, row, key, label from feedback order by id"
                            ).fetchall()


def test_integer_classes_are_read_by_the_rules_and_stored_canonical(
        runs: dict[str, Path], tables: Any, tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    client, _, rows = _serve("integer", runs, tables, db)
    with client:
        answer = client.post("/v1/predict", json={"records": rows, "keys": [
            f"job-{i}" for i in range(5)]})
        assert answer.status_code == 200, answer.text
        rid = answer.json()["request_id"]
        ok = client.post("/v1/feedback", json=[
            {"request_id": rid, "row": 0, "label": 10.0},       # the integer class 10
            {"request_id": rid, "row": 1, "label": "20"},
            {"key": "job-2", "label": 30}])
        assert ok.status_code == 200, ok.text
        assert ok.json() == {"accepted": 3, "matched": 3, "unmatched": 0,
                             "unmatched_items": []}
        bad = client.post("/v1/feedback", json=[{"request_id": rid, "row": 3, "label": 40},
                                                {"request_id": rid, "row": 4, "label": 11}])
        assert bad.status_code == 422
        error = bad.json()["errors"][0]
        assert (error["record"], error["field"], error["rule"]) == (1, "label",
                                                                    "unknown_category")
        assert "11" in error["message"]
    assert _stored(db) == [(rid, 0, None, "10"), (rid, 1, None, "20"), (None, 0, "job-2", "30")]


def test_unmatched_feedback_is_reported_and_never_labelled(
        runs: dict[str, Path], tables: Any, tmp_path: Path) -> None:
    from mlwright.loop.feedback import labelled_rows

    db = tmp_path / "log.db"
    client, _, rows = _serve("integer", runs, tables, db)
    with client:
        rid = client.post("/v1/predict", json={"records": rows}).json()["request_id"]
        answer = client.post("/v1/feedback", json=[
            {"request_id": rid, "row": 1, "label": 20},
            {"request_id": rid, "row": 99, "label": 20},          # a 5-row request
            {"request_id": "no-such-request", "label": 10},
            {"key": "no-such-key", "label": 10}])
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["accepted"], body["matched"], body["unmatched"]) == (4, 1, 3)
        reasons = {u["item"]: u["reason"] for u in body["unmatched_items"]}
        assert set(reasons) == {1, 2, 3}
        assert "no record 99" in reasons[1]
        assert "no-such-request" in reasons[2] and "no-such-key" in reasons[3]
    with sqlite3.connect(db) as conn:
        (model,) = conn.execute("select distinct model from predictions").fetchone()
    labelled = labelled_rows(f"sqlite:///{db}", model)
    assert list(labelled["_mw_row"]) == [1] and list(labelled["__label__"]) == [20]


def test_boolean_target_labels_follow_the_boolean_rules(
        runs: dict[str, Path], tables: Any, tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    client, _, rows = _serve("boolean", runs, tables, db)
    with client:
        rid = client.post("/v1/predict", json={"records": rows}).json()["request_id"]
        ok = client.post("/v1/feedback", json=[
            {"request_id": rid, "row": 0, "label": "yes"},
            {"request_id": rid, "row": 1, "label": True},
            {"request_id": rid, "row": 2, "label": 0},
            {"request_id": rid, "row": 3, "label": "F"}])
        assert ok.status_code == 200, ok.text
        assert ok.json()["matched"] == 4
        bad = client.post("/v1/feedback", json={"request_id": rid, "row": 4,
                                                "label": "maybe"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "label"
    assert [json.loads(r[3]) for r in _stored(db)] == [True, True, False, False]


def test_regression_labels_must_be_finite_and_sane(
        runs: dict[str, Path], tables: Any, tmp_path: Path) -> None:
    df, target = tables["regression"]
    db = tmp_path / "log.db"
    client, _, rows = _serve("regression", runs, tables, db)
    with client:
        rid = client.post("/v1/predict", json={"records": rows}).json()["request_id"]
        for i, poisoned in enumerate([1e308, "inf", "-Infinity", "1e400", True, "abc"]):
            bad = client.post("/v1/feedback", json=[
                {"request_id": rid, "row": 0, "label": 1234.0},
                {"request_id": rid, "row": 1, "label": poisoned}])
            assert bad.status_code == 422, (poisoned, bad.text)
            error = bad.json()["errors"][0]
            assert (error["record"], error["field"]) == (1, "label"), (i, error)
        high = float(df[target].iloc[:300].max())
        ok = client.post("/v1/feedback", json=[
            {"request_id": rid, "row": 0, "label": 1234.5},
            {"request_id": rid, "row": 1, "label": "2 000".replace(" ", "")},
            {"request_id": rid, "row": 2, "label": high * 10}])    # a shift, not a typo
        assert ok.status_code == 200, ok.text
        assert ok.json()["matched"] == 3
    assert [json.loads(r[3]) for r in _stored(db)] == [1234.5, 2000.0, high * 10]
