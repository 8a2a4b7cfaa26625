"""Live performance from feedback, data quality and service health from the log."""

from __future__ import annotations

import time

import orjson
import pytest
from monitor_replay import log_rows  # tests/monitor/ is on sys.path

from mlwright.data.kinds import Task
from mlwright.monitor import run_monitor
from mlwright.scoring import get_metric
from mlwright.store import feedback, open_database, predictions


@pytest.fixture(scope="module")
def labelled(holdout_run, tmp_path_factory):
    """600 test rows logged in requests of 3; labels sent back for 400 of them, half by
    request id and half by the caller's key, some twice (the later label wins)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'log.db'}"
    engine = open_database(url)
    rows = holdout_run.test.iloc[:600].reset_index(drop=True)
    ids = log_rows(engine, holdout_run, rows, batch=3, with_keys=True)
    fb = []
    for k in range(400):
        label = orjson.dumps(rows["churn"].iloc[k]).decode()
        if k % 2:
            fb.append({"request_id": ids[k][0], "row": ids[k][1], "key": None,
                       "label": label, "ts": 1.8e9 + k})
        else:
            fb.append({"request_id": None, "row": None, "key": f"cust-{k}", "label": label,
                       "ts": 1.8e9 + k})
    # A wrong label first, corrected later: only the latest counts.
    wrong = "Yes" if rows["churn"].iloc[1] == "No" else "No"
    fb.insert(0, {"request_id": ids[1][0], "row": ids[1][1], "key": None,
                  "label": orjson.dumps(wrong).decode(), "ts": 1.7e9})
    with engine.begin() as conn:
        conn.execute(feedback.insert(), fb)
    return url, rows


def test_live_metric_equals_the_offline_metric_on_the_same_rows(holdout_run, labelled):
    url, rows = labelled
    report = run_monitor(url, "telco", reference=holdout_run.folder, window=600, alerts=False)
    perf = report.performance
    assert perf is not None and perf.n_labelled == 400
    assert perf.metric == holdout_run.metric == "roc_auc"
    y = (rows["churn"].iloc[:400] == "Yes").to_numpy().astype(int)
    offline = get_metric(holdout_run.metric, Task.BINARY).score(
        y, holdout_run.model.predict_proba(rows[holdout_run.features].iloc[:400]))
    assert perf.value == pytest.approx(offline, abs=1e-12)
    from sklearn.metrics import roc_auc_score

    assert perf.value == pytest.approx(roc_auc_score(
        y, holdout_run.model.predict_proba(rows[holdout_run.features].iloc[:400])[:, 1]), abs=1e-12)
    assert perf.low < perf.value < perf.high
    assert len(perf.over_time) == 10 and sum(b["n"] for b in perf.over_time) == 400
    assert perf.offline is not None  # the validation score from metrics.json


def test_quality_and_service_from_the_log(holdout_run, labelled, tmp_path):
    url, rows = labelled
    engine = open_database(url)
    # Rejected records (422) with their violations, a new category, more missing values.
    bad = []
    for k in range(60):
        record = rows[holdout_run.features].iloc[k].to_dict()
        record = {c: (v.item() if hasattr(v, "item") else v) for c, v in record.items()}
        status, violations = 200, []
        if k < 20:
            record["payment_method"] = "Crypto"
            violations = [{"column": "payment_method", "rule": "unknown_category",
                           "severity": "warning"}]
        elif k < 40:
            record["tenure"] = None
            status = 422
            violations = [{"column": "tenure", "rule": "missing_value", "severity": "error"}]
        bad.append({"request_id": f"bad-{k}", "row": 0, "ts": time.time(), "model": "telco",
                    "version": "2", "role": "champion", "key": None,
                    "inputs": orjson.dumps(record).decode(), "prediction": '"No"',
                    "proba": "[0.9, 0.1]", "latency_ms": 50.0, "status": status,
                    "violations": orjson.dumps(violations).decode()})
    bad.append({**bad[-1], "request_id": "shadow-1", "role": "shadow"})  # not counted
    with engine.begin() as conn:
        conn.execute(predictions.insert(), bad)
    # the last 201 records: the 60 above and records 459-599 (requests 153-199 of 3)
    report = run_monitor(url, "telco", reference=holdout_run.folder, window=201, alerts=False)
    q = report.quality
    assert report.n_records == 201 and report.versions == {"1": 141, "2": 60}
    assert q.n_rejected == 20 and report.n_scored == 181
    assert {"column": "tenure", "rule": "missing_value", "severity": "error",
            "count": 20} in q.violations
    new = {n["column"]: n for n in q.new_categories}
    assert new["payment_method"]["values"] == [{"value": "Crypto", "count": 20}]
    assert "payment_method" in q.flagged
    svc = report.service
    assert svc.error_rate == pytest.approx(20 / 201)
    assert svc.status_counts == {"200": 181, "422": 20}
    assert svc.n_requests == 47 + 60
    assert svc.latency_ms["p99"] == pytest.approx(50.0)
    d = report.to_dict()
    assert orjson.loads(orjson.dumps(d)) == d  # plain JSON
    assert d["quality"]["n_rejected"] == 20
    # labels were sent for the first 400 records only, all outside this window
    assert d["performance"]["n_labelled"] == 0 and d["performance"]["value"] is None


def test_feedback_joins_each_row_of_a_large_batch_and_rows_sent_without_an_index(
        holdout_run, tmp_path):
    """One 6,000-record batch request labelled row by row (random labels, so a label joined
    to the wrong row shows), and feedback sent by request id alone, which means row 0: the
    join must give every record exactly its own latest label."""
    import numpy as np
    import pandas as pd

    from mlwright.monitor.performance import join_feedback
    from mlwright.store import parse_window, window_filter

    engine = open_database(f"sqlite:///{tmp_path / 'log.db'}")
    big = pd.concat([holdout_run.test] * 3, ignore_index=True).iloc[:6000]
    (batch, _), *_ = ids = log_rows(engine, holdout_run, big, model="b", batch=6000)
    assert len({rid for rid, _ in ids}) == 1
    singles = log_rows(engine, holdout_run, holdout_run.test.iloc[:3], model="b", batch=1,
                       t0=1.7e9 + 10)
    (triple, _), *_ = log_rows(engine, holdout_run, holdout_run.test.iloc[3:6], model="b",
                               batch=3, t0=1.7e9 + 20)
    labels = np.random.default_rng(1).choice(["Yes", "No"], 6000).tolist()

    def item(rid: str, row: int | None, label: str, ts: float) -> dict[str, object]:
        return {"request_id": rid, "row": row, "key": None, "ts": ts,
                "label": orjson.dumps(label).decode()}

    fb = [item(batch, k, label, 1.8e9) for k, label in enumerate(labels)]
    fb += [item(batch, 6000, "Yes", 1.8e9),              # no such record
           item(singles[0][0], None, "Yes", 1.8e9),       # request id alone
           item(singles[1][0], None, "Yes", 1.8e9),       # ... corrected with row 0
           item(singles[1][0], 0, "No", 1.8e9 + 1),
           item(singles[2][0], 0, "Yes", 1.8e9),          # row 0, corrected by id alone
           item(singles[2][0], None, "No", 1.8e9 + 1),
           item(triple, None, "No", 1.8e9),               # a 3-record request: row 0 only
           item(triple, 2, "Yes", 1.8e9)]
    with engine.begin() as conn:
        conn.execute(feedback.insert(), fb)
    joined = join_feedback(engine, window_filter(engine, "b", parse_window("10000")))
    assert joined["label"] == [*labels, "Yes", "No", "No", "No", "Yes"]
    # ... each next to its own record's prediction (oldest first, then in logged order)
    frames = [big, holdout_run.test.iloc[:3], holdout_run.test.iloc[[3, 5]]]
    expected = np.vstack([holdout_run.model.predict_proba(f[holdout_run.features]) for f in frames])
    np.testing.assert_allclose(np.array(joined["proba"]), expected, atol=1e-12)
