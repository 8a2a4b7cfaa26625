"""labelled_rows: every scored record gets exactly its own latest label."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import pytest

from mlwright.datasets import load_suite
from mlwright.loop.feedback import labelled_rows
from mlwright.store import feedback, open_database, predictions


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


def _awkward_log(url: str) -> None:
    """Records of every kind a window holds or leaves out, with feedback of every kind."""
    engine = open_database(url)
    logged = []
    k = 0

    def log(rid: str, row: int, ts: float, *, model: str = "m", version: str = "1",
            role: str = "champion", status: int = 200, key: str | None = None) -> None:
        nonlocal k
        k += 1
        logged.append({"request_id": rid, "row": row, "ts": ts, "model": model,
                       "version": version, "role": role, "key": key,
                       "inputs": orjson.dumps({"x": k}).decode(), "prediction": '"No"',
                       "proba": "[0.4,0.6]", "latency_ms": 1.0, "status": status,
                       "violations": None})

    for i in range(40):                                  # one record a minute
        log(f"r{i}", 0, 1.7e9 + 60 * i, key=f"k{i}")
        log(f"r{i}", 0, 1.7e9 + 60 * i, role="shadow", version="2")
    for row in range(5):                                 # a 5-record batch at the end
        log("batch", row, 1.7e9 + 60 * 40)
    log("bad", 0, 1.7e9 + 60 * 41, status=422)           # rejected: never labelled
    log("v2", 0, 1.7e9 + 60 * 41, version="2")           # another version
    log("other", 0, 1.7e9 + 60 * 41, model="n")          # another model

    def item(rid: str | None, row: int | None, label: str, ts: float, key: str | None = None
             ) -> dict[str, object]:
        return {"request_id": rid, "row": row, "key": key, "ts": ts,
                "label": orjson.dumps(label).decode()}

    sent = [item(f"r{i}", 0, "Yes" if i % 3 else "No", 1.8e9) for i in range(0, 40, 2)]
    sent += [item(f"r{i}", None, "No", 1.8e9) for i in range(1, 40, 4)]   # request id alone
    sent += [item(None, None, "Yes", 1.8e9, key=f"k{i}") for i in range(3, 40, 8)]  # by key
    sent += [item("batch", r, "Yes", 1.8e9) for r in (0, 2, 4)]
    sent += [item("bad", 0, "No", 1.8e9), item("v2", 0, "No", 1.8e9),
             item("other", 0, "No", 1.8e9)]
    # Relabelled, the later label written first (two server workers): the later time wins.
    sent += [item("r38", 0, "Yes", 1.8e9 + 10), item("r38", 0, "No", 1.8e9 + 5)]
    with engine.begin() as conn:
        conn.execute(predictions.insert(), logged)
        conn.execute(feedback.insert(), sent)


@pytest.mark.parametrize("window", ["10", "25", "45", "5000", "5m", "30m", "1d"])
def test_the_monitor_and_the_loop_count_the_same_labelled_records(tmp_path: Path,
                                                                   window: str) -> None:
    """One join, one window: the monitor's live performance and the loop's performance
    trigger see the same labelled records (the same labels, in the same order)."""
    from mlwright.monitor.performance import join_feedback
    from mlwright.store import parse_window, window_filter

    url = f"sqlite:///{tmp_path / 'log.db'}"
    _awkward_log(url)
    spec = parse_window(window)
    monitor = join_feedback(open_database(url),
                            window_filter(open_database(url), "m", spec, version="1"))
    loop = labelled_rows(url, "m", version="1", window=spec)
    assert len(loop) == len(monitor["label"]) > 0
    assert list(loop["__label__"]) == monitor["label"]
    assert list(loop["_mw_ts"]) == list(monitor["ts"])


def test_the_latest_label_is_the_latest_sent_not_the_latest_written(tmp_path: Path) -> None:
    """Regression: the loop kept the label with the largest feedback id, the monitor the
    one with the latest time; with two server workers the two orders can differ."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    _awkward_log(url)
    out = labelled_rows(url, "m", version="1")
    assert out.loc[out["_mw_request_id"] == "r38", "__label__"].tolist() == ["Yes"]
