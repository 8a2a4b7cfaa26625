"""labelled_rows: every scored record gets exactly its own latest label."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson

from mlwright.datasets import load_suite
from mlwright.loop.feedback import labelled_rows
from mlwright.serve.logstore import feedback, open_database, predictions


def test_each_record_gets_its_own_latest_label(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    engine = open_database(url)
    rows = load_suite("telco_churn", nrows=60).drop(columns="churn")
    inputs = [orjson.dumps(r).decode() for r in rows.to_dict("records")]
    requests = [uuid.uuid4().hex for _ in range(5)]
    # One 50-record request, two one-record requests, one 3-record request.
    layout = [(requests[0], 50), (requests[1], 1), (requests[2], 1), (requests[3], 3)]
    logged, k = [], 0
    for rid, size in layout:
        for row in range(size):
            logged.append({"request_id": rid, "row": row, "ts": 1.7e9 + k, "model": "m",
                           "version": "1", "role": "champion", "key": f"c-{k}",
                           "inputs": inputs[k], "prediction": '"No"', "proba": "[0.5,0.5]",
                           "latency_ms": 1.0, "status": 200, "violations": None})
            k += 1
    labels = ["Yes" if (i * 7) % 3 else "No" for i in range(50)]

    def item(rid: str | None, row: int | None, label: str, ts: float,
             key: str | None = None) -> dict[str, object]:
        return {"request_id": rid, "row": row, "key": key, "ts": ts,
                "label": orjson.dumps(label).decode()}

    sent = [item(requests[0], i, label, 1.8e9) for i, label in enumerate(labels)]
    sent += [item(requests[0], 50, "Yes", 1.8e9),           # no such record
             item(requests[1], None, "Yes", 1.8e9),          # request id alone: row 0
             item(requests[2], None, "Yes", 1.8e9),          # ... then corrected with row 0
             item(requests[2], 0, "No", 1.8e9 + 1),
             item(requests[3], None, "No", 1.8e9),           # a 3-record request: row 0 only
             item(None, None, "Yes", 1.8e9, key="c-53")]     # by key: its row 1
    with engine.begin() as conn:
        conn.execute(predictions.insert(), logged)
        conn.execute(feedback.insert(), sent)
    out = labelled_rows(url, "m")
    got = list(zip(out["_mw_request_id"], out["_mw_row"], out["__label__"], strict=True))
    assert got == [*((requests[0], i, label) for i, label in enumerate(labels)),
                   (requests[1], 0, "Yes"), (requests[2], 0, "No"), (requests[3], 0, "No"),
                   (requests[3], 1, "Yes")]
    # The inputs are the labelled record's own.
    assert list(out["tenure"]) == list(rows["tenure"].iloc[[*range(50), 50, 51, 52, 53]])
