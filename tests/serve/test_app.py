"""The REST API against a real uvicorn server on loopback, with real telco_churn models."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from serve_helpers import LiveServer, records

from mlwright.config import ServeConfig
from mlwright.exceptions import ServingError
from mlwright.registry.model import LoadedModel
from mlwright.serve import create_app
from mlwright.serve.keys import create_key, list_keys, revoke_key


@pytest.fixture(scope="module")
def served(run_a: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    db = tmp_path_factory.mktemp("db") / "log.db"
    app = create_app(str(run_a), database_url=f"sqlite:///{db}",
                     config=ServeConfig(max_body_mb=1.0))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client, db, server


def test_predict_forms_match_in_process_predictions(served: Any, run_a: Path,
                                                    telco_rows: pd.DataFrame) -> None:
    client, _, _ = served
    model = LoadedModel.from_folder(run_a).model
    frame = telco_rows.head(5)
    expected = model.predict_proba(frame)
    rows = records(frame)
    single = client.post("/v1/predict", json=rows[0])
    assert single.status_code == 200
    body = single.json()
    assert body["classes"] == ["No", "Yes"] and body["role"] == "champion"
    assert np.allclose(body["probabilities"][0], expected[0])
    assert body["request_id"] == single.headers["x-request-id"]
    for payload in (rows, {"records": rows},
                    {"columns": {c: [r[c] for r in rows] for c in rows[0]}}):
        out = client.post("/v1/predict", json=payload).json()
        assert np.allclose(out["probabilities"], expected)
        assert out["predictions"] == list(model.predict(frame))


def test_bad_input_gets_4xx_naming_field_and_record(served: Any,
                                                     telco_rows: pd.DataFrame) -> None:
    client, _, _ = served
    rows = records(telco_rows.head(2))
    rows[1]["tenure"] = "many"
    response = client.post("/v1/predict", json=rows)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert errors[0]["record"] == 1 and errors[0]["field"] == "tenure"
    assert client.post("/v1/predict", content=b'{"tenure": 1').status_code == 400
    assert client.post("/v1/predict", content=b"").status_code == 400
    assert client.post("/v1/predict", json=[]).status_code == 422
    assert client.post("/v1/predict", json=7).status_code == 422
    assert client.post("/v1/predict", json={"records": "x"}).status_code == 422
    assert client.post("/v1/predict", json={"columns": {"a": [1], "b": [1, 2]}}
                       ).status_code == 422
    big = client.post("/v1/predict", content=b"[" + b"1," * 600_000 + b"1]")
    assert big.status_code == 413
    # Chunked upload with no Content-Length is cut off at the limit too.
    chunks = (b"[" + b"1," * 100_000 for _ in range(10))
    assert client.post("/v1/predict", content=chunks).status_code == 413


def test_warnings_are_returned_and_logged(served: Any, telco_rows: pd.DataFrame) -> None:
    client, _db, _server = served
    rows = records(telco_rows.head(1))
    rows[0]["internet_service"] = "Satellite"
    response = client.post("/v1/predict", json=rows[0])
    assert response.status_code == 200
    assert response.json()["warnings"][0]["field"] == "internet_service"


def test_batch_upload_csv_and_parquet(served: Any, run_a: Path,
                                      telco_rows: pd.DataFrame) -> None:
    client, _, _ = served
    frame = telco_rows.head(300)
    expected = LoadedModel.from_folder(run_a).model.predict_proba(frame)[:, 1]
    csv = client.post("/v1/predict/batch", content=frame.to_csv(index=False).encode(),
                      headers={"content-type": "text/csv"})
    assert csv.status_code == 200
    out = pd.read_csv(io.StringIO(csv.text))
    assert list(out["row"]) == list(range(300))
    assert np.allclose(out["proba_Yes"], expected)
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    parquet = client.post("/v1/predict/batch", content=buffer.getvalue(),
                          headers={"content-type": "application/vnd.apache.parquet"})
    assert np.allclose(pd.read_csv(io.StringIO(parquet.text))["proba_Yes"], expected)
    broken = frame.head(5).copy()
    broken["tenure"] = broken["tenure"].astype(object)
    broken.loc[2, "tenure"] = "soon"
    bad = client.post("/v1/predict/batch", content=broken.to_csv(index=False).encode(),
                      headers={"content-type": "text/csv"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["record"] == 2
    assert client.post("/v1/predict/batch", content=b"\x00\x01garbage",
                       headers={"content-type": "application/vnd.apache.parquet"}
                       ).status_code == 400


def test_explain_gives_per_column_contributions(served: Any,
                                                telco_rows: pd.DataFrame) -> None:
    client, _, _ = served
    response = client.post("/v1/explain", json=records(telco_rows.head(2)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] and body["explanation"]
    assert "tenure" in response.text
    bad = records(telco_rows.head(1))
    bad[0]["tenure"] = "x"
    assert client.post("/v1/explain", json=bad).status_code == 422


def test_feedback_is_stored_by_request_id_and_key(served: Any,
                                                  telco_rows: pd.DataFrame) -> None:
    client, db, server = served
    rows = records(telco_rows.head(2))
    answer = client.post("/v1/predict", json={"records": rows, "keys": ["cust-1", "cust-2"]})
    request_id = answer.json()["request_id"]
    ok = client.post("/v1/feedback", json=[{"request_id": request_id, "row": 1, "label": "Yes"},
                                           {"key": "cust-1", "label": "No"}])
    assert ok.json() == {"accepted": 2, "matched": 2, "unmatched": 0, "unmatched_items": []}
    assert client.post("/v1/feedback", json={"key": "x", "label": "Maybe"}).status_code == 422
    assert client.post("/v1/feedback", json={"label": "Yes"}).status_code == 422
    server.stop()  # graceful shutdown flushes the log
    with sqlite3.connect(db) as conn:
        fb = conn.execute("select request_id, row, key, label from feedback").fetchall()
        keyed = conn.execute("select key from predictions where request_id = ? order by row",
                             (request_id,)).fetchall()
        statuses = dict(conn.execute(
            "select status, count(*) from predictions group by status").fetchall())
        warned = conn.execute("select violations from predictions where violations like "
                              "'%Satellite%'").fetchall()
    assert (request_id, 1, None, '"Yes"') in fb and (None, 0, "cust-1", '"No"') in fb
    assert keyed == [("cust-1",), ("cust-2",)]
    assert statuses[200] > 0 and statuses[422] > 0   # rejected records are logged too
    assert len(warned) == 1


@pytest.fixture
def fresh(run_a: Path, tmp_path: Path) -> Any:
    def make(**kwargs: Any) -> Any:
        return create_app(str(run_a), database_url=f"sqlite:///{tmp_path / 'db.db'}",
                          **kwargs)
    return make, f"sqlite:///{tmp_path / 'db.db'}"


def test_model_health_and_metrics(fresh: Any, telco_rows: pd.DataFrame) -> None:
    make, _ = fresh
    with LiveServer(make()) as server, httpx.Client(base_url=server.url) as client:
        client.post("/v1/predict", json=records(telco_rows.head(3)))
        info = client.get("/v1/model").json()
        assert info["champion"]["classes"] == ["No", "Yes"]
        assert "tenure" in info["features"] and info["contract"]["target"]["name"] == "churn"
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").status_code == 200
        metrics = client.get("/metrics").text
        assert 'mlwright_requests_total{endpoint="/v1/predict",status="200"} 1.0' in metrics
        assert "mlwright_batch_rows_bucket" in metrics
        assert 'mlwright_predictions_total{model="a"' in metrics
        spec = client.get("/openapi.json").json()
        tenure = spec["components"]["schemas"]["Record"]["properties"]["tenure"]
        assert tenure["x-range"] == [0.0, 72.0]
        partner = spec["components"]["schemas"]["Record"]["properties"]["partner"]
        assert partner["enum"] == [False, True]          # booleans reject unknown values
        # CORS is off unless configured.
        cors = client.options("/v1/predict", headers={
            "origin": "http://evil.example", "access-control-request-method": "POST"})
        assert "access-control-allow-origin" not in cors.headers


def test_api_keys_required_off_loopback(fresh: Any, telco_rows: pd.DataFrame) -> None:
    make, url = fresh
    with pytest.raises(ServingError, match="keys create"):
        make(host="0.0.0.0")
    key_id, key = create_key(url, "tests")
    assert [k["id"] for k in list_keys(url)] == [key_id]
    app = make(host="0.0.0.0")  # bound to loopback here; the requirement follows the host
    with LiveServer(app) as server, httpx.Client(base_url=server.url) as client:
        row = records(telco_rows.head(1))[0]
        assert client.post("/v1/predict", json=row).status_code == 401
        assert client.post("/v1/predict", json=row,
                           headers={"x-api-key": "mlw_wrong"}).status_code == 401
        assert client.post("/v1/predict", json=row,
                           headers={"authorization": f"Bearer {key}"}).status_code == 200
        assert client.get("/healthz").status_code == 200
    revoke_key(url, key_id)
    with pytest.raises(ServingError):
        make(host="0.0.0.0")
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        stored = conn.execute("select hash from api_keys").fetchone()[0]
    assert key not in stored and len(stored) == 64


def _logged(db: Path, request_id: str, expected: int) -> list[tuple[Any, ...]]:
    """The log rows of a request, once the writer thread has written all of them."""
    import time

    deadline = time.monotonic() + 30
    while True:
        with sqlite3.connect(db) as conn:
            found = conn.execute("select row, status, violations from predictions where "
                                 "request_id = ? order by row", (request_id,)).fetchall()
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_batch_upload_logs_every_row_once_with_its_warnings(
        run_a: Path, tmp_path: Path, telco_rows: pd.DataFrame) -> None:
    from mlwright.serve.routes.batch import BATCH_CHUNK

    db = tmp_path / "log.db"
    app = create_app(str(run_a), database_url=f"sqlite:///{db}")
    # More rows than one chunk of the streamed answer, so row numbers must carry over.
    n = BATCH_CHUNK + 300
    frame = pd.concat([telco_rows] * (n // len(telco_rows) + 1)).head(n).reset_index(drop=True)
    frame["internet_service"] = frame["internet_service"].astype(object)
    frame.loc[[7, BATCH_CHUNK + 5], "internet_service"] = "Satellite"
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        # Semicolons (a European spreadsheet's CSV) are detected, not read as one column.
        answer = client.post("/v1/predict/batch", headers={"content-type": "text/csv"},
                             content=frame.to_csv(index=False, sep=";").encode())
        assert answer.status_code == 200, answer.text[:500]
        out = pd.read_csv(io.StringIO(answer.text))
        assert list(out["row"]) == list(range(n))
        logged = _logged(db, answer.headers["x-request-id"], n)
        assert [r[0] for r in logged] == list(range(n))
        # Each warning is logged with its row (the slice has out-of-range values of its own).
        flagged = {r[0]: r[2] for r in logged if r[2] is not None}
        assert int(answer.headers["x-contract-warnings"]) >= len(flagged) >= 2
        assert {row for row, v in flagged.items() if "Satellite" in v} == {7, BATCH_CHUNK + 5}
        # A rejected upload is logged too (status 422), the bad row flagged.
        frame["tenure"] = frame["tenure"].astype(object)
        frame.loc[3, "tenure"] = "soon"
        bad = client.post("/v1/predict/batch", headers={"content-type": "text/csv"},
                          content=frame.head(20).to_csv(index=False).encode())
        assert bad.status_code == 422 and bad.json()["errors"][0]["record"] == 3
        rejected = _logged(db, bad.headers["x-request-id"], 20)
        assert [r[:2] for r in rejected] == [(i, 422) for i in range(20)]
        assert [r[0] for r in rejected if r[2] is not None] == [3]


def test_batch_parquet_with_dates_and_overflowing_dates(tmp_path: Path) -> None:
    import mlwright as mw
    from mlwright.datasets import load_suite

    df = load_suite("mpls_person_search", nrows=1500)
    result = mw.train(df.iloc[:1200], "personSearch", time_budget=10, families=["linear"],
                      n_trials=1, seed=0)
    result.save(tmp_path / "run")
    rows = df.iloc[1200:].drop(columns="personSearch").reset_index(drop=True)
    assert str(rows["date"].dtype).startswith("datetime64")
    expected = result.model.predict_proba(rows)[:, 1]
    app = create_app(str(tmp_path / "run"), database_url=f"sqlite:///{tmp_path / 'log.db'}")
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        buffer = io.BytesIO()
        rows.to_parquet(buffer)  # the dates stay timestamps, not ISO strings
        answer = client.post("/v1/predict/batch", content=buffer.getvalue(),
                             headers={"content-type": "application/vnd.apache.parquet"})
        assert answer.status_code == 200, answer.text[:500]
        proba = pd.read_csv(io.StringIO(answer.text)).filter(like="proba_").iloc[:, -1]
        assert np.allclose(proba, expected)
        # Valid ISO 8601, but not a date once moved to UTC: a 422 naming it, never a 500.
        one = records(rows.head(1).astype({"date": str}))[0]
        for stamp in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-14:00"):
            bad = client.post("/v1/predict", json={**one, "date": stamp})
            assert bad.status_code == 422, bad.text
            assert bad.json()["errors"][0]["field"] == "date"
