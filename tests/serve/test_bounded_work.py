"""No request can stall the server (issue 16, points 1 and 2), on a real uvicorn server:
requests over ``serve.max_records`` are refused (413) before their cost is paid, large
refusals are cheap, large requests are validated off the event loop, and the time limits
answer 503 (not answered in time) and 408 (body not received in time), naming the limit.

How fast a hostile request is answered is measured in benchmarks/soak.py, not here: these
tests check what is answered, and that other requests are answered while a large one is
being validated."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pandas as pd
import pytest
from serve_helpers import LiveServer, records

from mlwright.config import ServeConfig
from mlwright.serve import create_app


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bounded") / "log.db"


@pytest.fixture(scope="module")
def url(run_a: Path, db: Path) -> Iterator[str]:
    app = create_app(str(run_a), database_url=f"sqlite:///{db}")
    with LiveServer(app) as server:
        yield server.url


def _post(url: str, body: bytes, path: str = "/v1/predict") -> httpx.Response:
    return httpx.post(f"{url}{path}", content=body, timeout=60,
                      headers={"content-type": "application/json"})


def _empties(n: int) -> bytes:
    return b"[" + b",".join([b"{}"] * n) + b"]"


@pytest.mark.parametrize("n", [100_000, 3_000_000])
def test_empty_objects_over_the_record_limit_are_refused_at_once(url: str, n: int) -> None:
    body = _empties(n)
    assert len(body) < 10 * 1024 * 1024  # within the default body limit
    answer = _post(url, body)
    assert answer.status_code == 413, answer.text
    detail = answer.json()["detail"]
    assert "serve.max_records" in detail and "10,000" in detail


def test_record_limit_counts_records_in_every_form(url: str,
                                                   telco_rows: pd.DataFrame) -> None:
    row = records(telco_rows.head(1))[0]
    for payload in ([row] * 10_001, {"records": [row] * 10_001},
                    {"columns": {name: [value] * 10_001 for name, value in row.items()}}):
        answer = _post(url, orjson.dumps(payload))
        assert answer.status_code == 413, answer.text
        detail = answer.json()["detail"]
        assert detail.startswith("The request holds 10,001 records; the limit is 10,000")
        assert "serve.max_records" in detail


def test_braces_inside_strings_are_not_objects(url: str, telco_rows: pd.DataFrame) -> None:
    # 30,000 braces in text, 50 records: the quick count is over the limit, the exact one not.
    rows = [dict(row, extra="{[" * 300) for row in records(telco_rows.head(50))]
    answer = _post(url, orjson.dumps(rows))
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == 50


def test_a_large_invalid_request_is_answered_fast_with_exact_counts(
        url: str, telco_rows: pd.DataFrame) -> None:
    names = list(records(telco_rows.head(1))[0])
    # 10,000 records, every value a different one (wrong for all but the text fields):
    # nothing to remember from one record to the next.
    bad = [{name: f"x{i}" for name in names} for i in range(10_000)]
    answer = _post(url, orjson.dumps(bad))
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["detail"].startswith("10,000 of 10,000 records break the data contract")
    assert "are not listed" in body["detail"]
    assert len(body["errors"]) == 50


def test_deep_nesting_is_refused_fast_and_the_log_goes_on(
        url: str, db: Path, telco_rows: pd.DataFrame) -> None:
    for depth in (300, 500, 5_000, 100_000):  # orjson parses 1,024 levels, writes 254
        answer = _post(url, b"[" * depth + b"]" * depth)
        assert answer.status_code in (400, 413, 422), answer.text
        assert answer.json()["detail"]
    # The refused deep record is logged as far as it can be, and the log writer lives on.
    answer = httpx.post(f"{url}/v1/predict", json=records(telco_rows.head(1))[0])
    rid = answer.json()["request_id"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with sqlite3.connect(db) as conn:
            if conn.execute("select 1 from predictions where request_id = ?",
                            (rid,)).fetchone():
                break
        time.sleep(0.1)
    else:
        raise AssertionError("the prediction after the deep request was never logged")


def test_a_deeply_nested_value_in_a_record_is_refused_with_its_field(
        url: str, telco_rows: pd.DataFrame) -> None:
    # The soak found a 500: quoting a list nested 1,000 deep in the message hit Python's
    # recursion limit (the body itself is within orjson's 1,024 levels).
    row = records(telco_rows.head(1))[0]
    field = next(iter(row))
    deep = b"[" * 1000 + b"]" * 1000
    body = orjson.dumps({**row, field: "X"}).replace(b'"X"', deep)
    answer = _post(url, body)
    assert answer.status_code == 422, answer.text
    assert any(e["field"] == field and "[[[" in e["message"]
               for e in answer.json()["errors"]), answer.text


def test_a_record_with_300000_unknown_fields_is_answered_at_once(
        url: str, telco_rows: pd.DataFrame) -> None:
    # One record, so no record limit applies: the soak found its unknown fields sorted and
    # checked one by one on the event loop (2.6 s for 650,000).
    row = records(telco_rows.head(1))[0]
    body = orjson.dumps({**row, **{f"x{i}": i for i in range(300_000)}})
    answer = _post(url, body)
    assert answer.status_code == 200, answer.text
    extra = [w for w in answer.json()["warnings"] if w["rule"] == "extra_field"]
    assert extra[-1]["message"].startswith("299,980 more fields"), extra[-1]


def test_others_are_answered_while_a_large_request_is_validated(
        url: str, telco_rows: pd.DataFrame) -> None:
    row = records(telco_rows.head(1))[0]
    # 10,000 records (the default limit) with unknown categories in every text field and a
    # wrong last field: validated on the worker thread, refused. The 100,000 empty
    # objects held every other request 7.5 s; the old path took 3 s on these.
    slow = orjson.dumps([{**{k: f"new {i}" if isinstance(v, str) else v
                             for k, v in row.items()}, "tenure": "soon"}
                         for i in range(10_000)])
    done: dict[str, Any] = {}

    sent = threading.Event()

    def big() -> None:
        # httpx's hook runs once the request is about to go out; the body follows at once.
        with httpx.Client(timeout=60, event_hooks={"request": [lambda _: sent.set()]}) as c:
            done["answer"] = c.post(f"{url}/v1/predict", content=slow,
                                    headers={"content-type": "application/json"})

    # Answers received while the large request was out and not yet answered. Had its
    # validation run on the event loop, these would queue behind it: at most the one
    # request already in flight could finish in between.
    during = 0
    with httpx.Client(base_url=url, timeout=30) as client:
        client.get("/healthz")  # connected before the large request goes out
        thread = threading.Thread(target=big)
        thread.start()
        sent.wait(30)
        while thread.is_alive():
            for path in ("/healthz", "/readyz"):
                assert client.get(path).status_code == 200
            assert client.post("/v1/predict", json=row).status_code == 200
            during += "answer" not in done
        thread.join()
    assert done["answer"].status_code == 422
    assert done["answer"].json()["detail"].startswith("10,000 of 10,000 records break")
    assert during >= 5, during


def _raw(port: int, head: bytes, pieces: list[bytes], pause: float) -> bytes:
    """Send ``head`` then ``pieces`` with ``pause`` between them; what the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head)
        try:
            for piece in pieces:
                time.sleep(pause)
                sock.sendall(piece)
        except OSError:  # the server answered and closed: read what it said
            pass
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


def test_time_limits_answer_408_and_503_naming_the_limit(
        run_a: Path, tmp_path: Path, telco_rows: pd.DataFrame) -> None:
    # The limits fire on a sweep every 0.1 s: 10,000 records take well over 0.2 s to answer,
    # and the body limit comes first for a body that never arrives.
    config = ServeConfig(body_timeout_s=0.05, request_timeout_s=0.1, max_upload_rows=100)
    app = create_app(str(run_a), config=config, database_url=f"sqlite:///{tmp_path / 'l.db'}")
    rows = records(telco_rows)
    with LiveServer(app) as server:
        head = (b"POST /v1/predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                b"content-length: 1000\r\n\r\n")
        stalled = _raw(server.port, head + b'{"tenure"', [], 0)   # then nothing
        trickled = _raw(server.port, head, [b" "] * 20, 0.05)     # a byte every 50 ms
        for answer in (stalled, trickled):
            assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
            assert b"serve.body_timeout_s" in answer
        with httpx.Client(base_url=server.url, timeout=30) as client:
            slow = client.post("/v1/predict", json=(rows * 20)[:10_000])
            assert slow.status_code == 503, slow.text
            assert "serve.request_timeout_s" in slow.json()["detail"]
            assert slow.headers["retry-after"] == "1"
            # The server goes on answering (the model thread was not double-booked): once
            # the stopped call has left the model thread, single rows are answered again.
            deadline = time.monotonic() + 10
            while client.post("/v1/predict", json=rows[0]).status_code != 200:
                assert time.monotonic() < deadline, "single rows were never answered again"
                time.sleep(0.05)
            for row in rows[:20]:
                assert client.post("/v1/predict", json=row).status_code == 200
            assert client.get("/healthz").status_code == 200
            upload = telco_rows.head(101).to_csv(index=False).encode()
            big = client.post("/v1/predict/batch", content=upload,
                              headers={"content-type": "text/csv"})
            assert big.status_code == 413, big.text
            assert big.json()["detail"].startswith("The upload holds 101 rows; the limit is "
                                                   "100 per upload (serve.max_upload_rows)")
            metrics = client.get("/metrics").text
        assert 'kind="body_timeout"' in metrics and 'kind="timeout"' in metrics
