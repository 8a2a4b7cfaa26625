"""Large requests do not hold up small ones (issue 16): a body of LARGE_BODY bytes or more
is parsed and validated in the body worker process (same answers, refused records logged,
a dead worker replaced), and a request of many rows goes to the model in parts, so a
single-row request sent meanwhile is predicted between them."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pandas as pd
import pytest
from serve_helpers import LiveServer, records

from mlwright.serve import create_app
from mlwright.serve.batching import MicroBatcher
from mlwright.serve.bodies import LARGE_BODY, WORKER_NICE
from mlwright.serve.records import RecordValidator
from mlwright.serve.runtime import Active, Slot, load_source, make_predictor


@pytest.fixture(scope="module")
def served(run_a: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    db = tmp_path_factory.mktemp("large") / "log.db"
    app = create_app(str(run_a), database_url=f"sqlite:///{db}")
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        yield client, app.state.server, db


def _rows(telco_rows: pd.DataFrame, n: int) -> list[dict[str, Any]]:
    rows = records(telco_rows)
    return [rows[i % len(rows)] for i in range(n)]


def test_a_large_body_gets_the_answers_of_small_requests(served: Any,
                                                         telco_rows: pd.DataFrame) -> None:
    client, _, _ = served
    rows = _rows(telco_rows, 1200)
    body = orjson.dumps({"records": rows, "keys": [f"k{i}" for i in range(len(rows))]})
    assert len(body) >= LARGE_BODY
    large = client.post("/v1/predict", content=body,
                        headers={"content-type": "application/json"})
    assert large.status_code == 200, large.text
    small = [client.post("/v1/predict", json=rows[i:i + 100]).json()
             for i in range(0, len(rows), 100)]
    assert large.json()["predictions"] == [p for s in small for p in s["predictions"]]
    assert large.json()["probabilities"] == [p for s in small for p in s["probabilities"]]


def _logged(db: Path, rid: str) -> list[tuple[int, str, int]]:
    deadline = time.monotonic() + 20
    while True:
        with sqlite3.connect(db) as conn:
            rows = conn.execute("select row, inputs, status from predictions where "
                                "request_id = ? order by row", (rid,)).fetchall()
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def test_a_large_refused_body_is_counted_and_logged_record_by_record(
        served: Any, telco_rows: pd.DataFrame) -> None:
    client, _, db = served
    rows = [{**row, "tenure": f"soon {i}"} for i, row in enumerate(_rows(telco_rows, 1200))]
    rows[7] = {**rows[7], "deep": [[[[[1]]]]]}  # a nested value, logged as it came
    answer = client.post("/v1/predict", content=orjson.dumps(rows),
                         headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"].startswith("1,200 of 1,200 records break the data contract")
    assert answer.json()["errors"][0]["field"] == "tenure"
    logged = _logged(db, answer.headers["x-request-id"])
    assert [r[0] for r in logged] == list(range(1200))
    assert {r[2] for r in logged} == {422}
    assert [orjson.loads(r[1]) for r in logged] == rows


def test_a_dead_body_worker_costs_one_503_and_is_replaced(served: Any,
                                                          telco_rows: pd.DataFrame) -> None:
    client, state, _ = served
    body = orjson.dumps(_rows(telco_rows, 1200))
    assert client.post("/v1/predict", content=body).status_code == 200
    pool = state.bodies._pool
    for pid in list(pool._processes):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 20  # the pool notices its dead process
    while not pool._broken and time.monotonic() < deadline:
        time.sleep(0.05)
    answer = client.post("/v1/predict", content=body)
    assert answer.status_code == 503, answer.text
    assert "worker process" in answer.json()["detail"]
    again = client.post("/v1/predict", content=body)
    assert again.status_code == 200, again.text
    assert client.get("/readyz").status_code == 200


def test_the_body_worker_gives_way_to_the_server(served: Any) -> None:
    _, state, _ = served
    workers = list(state.bodies._pool._processes)
    assert workers
    for pid in workers:
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(
            19, os.getpriority(os.PRIO_PROCESS, 0) + WORKER_NICE)


def test_a_single_row_is_predicted_between_the_parts_of_a_large_request(
        run_a: Path, telco_rows: pd.DataFrame) -> None:
    loaded = load_source(str(run_a))
    predict = make_predictor(loaded)
    calls: list[set[int]] = []   # the records of each model call, by identity
    first_part = threading.Event()
    go_on = threading.Event()

    def recording(batch: list[dict[str, Any]]) -> Any:
        calls.append({id(r) for r in batch})
        if len(calls) == 1:  # hold the first part until the single row is queued
            first_part.set()
            go_on.wait(30)
        return predict(batch)

    rows = RecordValidator(loaded.contract).validate(records(telco_rows))[0]
    big = [dict(rows[i % len(rows)]) for i in range(5 * MicroBatcher.part_rows + 1)]
    single = [dict(rows[0])]

    async def run() -> tuple[Any, Any]:
        batcher = MicroBatcher(Slot("champion", None, Active(loaded, recording)),
                               ThreadPoolExecutor(1), max_batch=1024, max_wait=0.002)
        batcher.start()
        large = asyncio.create_task(batcher.submit(big))
        await asyncio.get_running_loop().run_in_executor(None, first_part.wait, 30)
        small = asyncio.create_task(batcher.submit(single))
        await asyncio.sleep(0.05)  # the single row is queued behind the first part
        go_on.set()
        out = await asyncio.gather(large, small)
        await batcher.stop()
        return out[0], out[1]

    (_, preds, proba), (_, one, _) = asyncio.run(run())
    assert len(calls[0]) == MicroBatcher.part_rows
    single_call = next(i for i, c in enumerate(calls) if id(single[0]) in c)
    last_part = next(i for i, c in enumerate(calls) if id(big[-1]) in c)
    assert 0 < single_call < last_part, [len(c) for c in calls]
    # The parts, glued in order, are the whole request's predictions.
    whole, whole_proba = predict(big)
    assert preds == whole and proba == whole_proba
    assert one == predict(single)[0]
