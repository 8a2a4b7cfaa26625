"""Alerts (events table, webhook), the HTML report in chromium, the JSON endpoint, and an
end-to-end replay through the real server."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest
from monitor_replay import Live, Receiver, log_rows, records_json

from browser import render  # tests/browser.py (tests/ is on sys.path)
from mlwright.config import MonitorConfig
from mlwright.monitor import monitor_router, run_monitor
from mlwright.monitor.alerts import post_webhook
from mlwright.store import events, feedback, open_database, predictions
from telco_drift import shifted  # tests/telco_drift.py


@pytest.fixture(scope="module")
def drifted_log(holdout_run, tmp_path_factory):
    """800 shifted test rows, labelled, plus 100 rejected records: every alert fires."""
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'log.db'}"
    engine = open_database(url)
    rows = shifted(holdout_run.test.iloc[:800].reset_index(drop=True))
    ids = log_rows(engine, holdout_run, rows, batch=4)
    with engine.begin() as conn:
        conn.execute(feedback.insert(), [
            {"request_id": rid, "row": row, "key": None, "ts": 1.8e9,
             "label": orjson.dumps(rows["churn"].iloc[k]).decode()}
            for k, (rid, row) in enumerate(ids)])
        conn.execute(predictions.insert(), [
            {"request_id": f"r{k}", "row": 0, "ts": 1.7e9 + 800 + k, "model": "telco",
             "version": "1", "role": "champion", "key": None, "inputs": '{"tenure": "x"}',
             "prediction": None, "proba": None, "latency_ms": 1.0, "status": 422,
             "violations": '[{"record": 0, "field": "tenure", "rule": "type", '
                           '"severity": "error", "message": "expected a number"}]'}
            for k in range(100)])
    return url


def test_alerts_go_to_the_events_table_and_the_webhook(holdout_run, drifted_log):
    config = MonitorConfig(min_performance=0.99, max_error_rate=0.05)
    with Receiver() as hook:
        config.webhook = hook.url
        report = run_monitor(drifted_log, "telco", reference=holdout_run.folder, window=900,
                             config=config)
    kinds = {a.kind for a in report.alerts}
    assert {"feature_drift", "prediction_drift", "error_rate", "performance"} <= kinds
    assert report.quality.violations[0] == {"column": "tenure", "rule": "type",
                                            "severity": "error", "count": 100}
    assert sorted(p["kind"] for p in hook.received) == sorted(a.kind for a in report.alerts)
    assert all(p["model"] == "telco" and p["window"] == "900" for p in hook.received)
    with open_database(drifted_log).connect() as conn:
        stored = conn.execute(events.select()).mappings().all()
    assert sorted(e["kind"] for e in stored) == sorted(kinds)
    assert all(e["source"] == "monitor" for e in stored)


def test_a_failing_webhook_is_logged_not_raised(holdout_run, drifted_log, caplog):
    with Receiver(status=500) as hook:
        assert post_webhook(hook.url, {"x": 1}) is False
        report = run_monitor(drifted_log, "telco", reference=holdout_run.folder, window=900,
                             config=MonitorConfig(webhook=hook.url))
    assert report.alerts and len(hook.received) == 1 + len(report.alerts)
    assert "monitor webhook" in caplog.text
    # nothing listens on a closed port: still no exception
    assert post_webhook("http://127.0.0.1:9/none", {"x": 1}) is False


def test_report_renders_in_chromium_without_console_errors(holdout_run, drifted_log, tmp_path):
    report = run_monitor(drifted_log, "telco", reference=holdout_run.folder, window=900,
                         alerts=False)
    path = report.write_html(tmp_path / "monitor.html")
    errors, page = render(path)
    assert errors == []
    assert page.charts_state == "done" and page.unrendered == []
    # one chart per feature, the prediction chart and performance over time
    assert page.chart_divs == len(report.features) + 2
    assert page.requests == []  # self-contained
    text = page.text
    assert text.index("monthly_charges") < text.index("tenure")  # drifting first
    assert "Performance from feedback" in text and "roc_auc" in text


def test_monitor_endpoint_and_gauges(holdout_run, drifted_log):
    from fastapi import FastAPI
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()  # as the server's /metrics has its own
    app = FastAPI()
    app.include_router(monitor_router(drifted_log, "telco", holdout_run.folder,
                                      registry=registry))
    with Live(app) as live:
        ok = httpx.get(f"{live.url}/v1/monitor", params={"window": "900"}, timeout=60)
        bad = httpx.get(f"{live.url}/v1/monitor", params={"window": "soon"}, timeout=60)
        none = httpx.get(f"{live.url}/v1/monitor", params={"version": "9"}, timeout=60)
    assert ok.status_code == 200
    body = ok.json()
    assert body["model"] == "telco" and body["n_records"] == 900
    assert set(body["drifted_features"]) >= {"contract", "monthly_charges"}
    assert body["alerts"] and body["performance"]["n_labelled"] == 800
    assert bad.status_code == 422 and "window" in bad.json()["detail"]
    # A version never logged is named, with the versions that were (issue 14, point 12).
    detail = none.json()["detail"]
    assert none.status_code == 404 and "Version '9'" in detail and "has no logged" in detail
    assert "the log has versions 1" in detail and "Serve it first" not in detail
    metrics = generate_latest(registry).decode()
    assert 'mlwright_feature_drifted{feature="contract",model="telco"} 1.0' in metrics
    assert "mlwright_drift_share" in metrics


def test_end_to_end_through_the_real_server(holdout_run, tmp_path):
    """Test rows POSTed to the real server, labels to /v1/feedback, then GET /v1/monitor."""
    from mlwright.loop.service import SERVER_EXTENSIONS
    from mlwright.serve.app import create_app

    url = f"sqlite:///{tmp_path / 'log.db'}"
    # Mounted as `mlwright serve` mounts it: an extension of the server, reference = the
    # answering champion's run folder, gauges on the server's own /metrics.
    app = create_app(holdout_run.folder, database_url=url, host="127.0.0.1",
                     extensions=SERVER_EXTENSIONS)
    rows = holdout_run.test.iloc[:400].reset_index(drop=True)
    sent = []
    with Live(app) as live, httpx.Client(base_url=live.url, timeout=60) as client:
        for start in range(0, len(rows), 50):
            part = rows.iloc[start:start + 50]
            r = client.post("/v1/predict", json=records_json(part[holdout_run.features]))
            assert r.status_code == 200
            sent.append((r.json()["request_id"], part))
        labels = [{"request_id": rid, "row": i, "label": y}
                  for rid, part in sent for i, y in enumerate(part["churn"])]
        assert client.post("/v1/feedback", json=labels).status_code == 200
        engine = open_database(url)
        deadline = time.monotonic() + 60  # the server writes its log in the background
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                n = conn.execute(feedback.select()).fetchall()
            if len(n) == len(rows):
                break
            time.sleep(0.1)
        body = client.get("/v1/monitor", params={"window": "400"}).json()
        exported = client.get("/metrics").text
        hook = client.post("/v1/hooks/retrain", json={"reason": "test"})
    assert hook.status_code == 401  # the retrain webhook is mounted, and never open
    assert f'mlwright_drift_share{{model="{body["model"]}"}}' in exported
    assert body["n_records"] == 400 and body["n_scored"] == 400
    assert body["drifted_features"] == [] and body["dataset_drift"]["detected"] is False
    perf = body["performance"]
    assert perf["n_labelled"] == 400
    from mlwright.data.kinds import Task
    from mlwright.scoring import get_metric

    y = (rows["churn"] == "Yes").to_numpy().astype(int)
    offline = get_metric(holdout_run.metric, Task.BINARY).score(
        y, holdout_run.model.predict_proba(rows[holdout_run.features]))
    assert perf["value"] == pytest.approx(offline, abs=1e-9)
