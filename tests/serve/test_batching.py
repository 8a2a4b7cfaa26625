"""Micro-batching on a live server: requests that queue while the model thread is busy go to
the model in one call (counted in /metrics), each gets its own rows' predictions (the same as
predicted alone), a refused or failing request never fails its batch-mates, a batch uses one
model version across a hot swap, and a client that leaves does not stall the others.

The model thread is held by a real task on the server's own predict executor, so the queue
fills deterministically; no test waits for a time to pass."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
from serve_helpers import LiveServer, records

from mlwright.serve import create_app
from mlwright.serve.runtime import Active, load_source, make_predictor

ROWS = 40  # rows per request: past the inline path's few rows, so each goes to the thread


@pytest.fixture
def served(run_a: Path, tmp_path: Path) -> Iterator[tuple[LiveServer, Any]]:
    app = create_app(str(run_a), database_url=f"sqlite:///{tmp_path / 'log.db'}")
    with LiveServer(app) as server:
        yield server, app.state.server


def _chunks(telco_rows: pd.DataFrame, n: int) -> list[list[dict[str, Any]]]:
    rows = records(telco_rows)
    return [rows[i * ROWS:(i + 1) * ROWS] for i in range(n)]


def _sample(state: Any, name: str, **labels: str) -> float:
    return float(state.metrics.registry.get_sample_value(name, labels) or 0.0)


@contextlib.contextmanager
def _model_thread_held(state: Any) -> Iterator[Callable[[int], None]]:
    """Occupy the server's one model thread; yields ``wait_for(n)``, which returns once
    ``n`` requests were validated and handed to the batcher since it was entered. Released
    on exit. Send one request, wait for it (it goes to the thread, alone), then the others:
    they queue behind it and go in the next call together."""
    release = threading.Event()
    state.executor.submit(release.wait, 60)
    before = _sample(state, "mlwright_request_rows_count")

    def wait_for(n: int) -> None:
        deadline = time.monotonic() + 60
        while _sample(state, "mlwright_request_rows_count") < before + n:
            assert time.monotonic() < deadline, "the requests never reached the batcher"
            time.sleep(0.01)

    try:
        yield wait_for
    finally:
        release.set()


def _send(pool: ThreadPoolExecutor, url: str, bodies: list[bytes]) -> list[Any]:
    return [pool.submit(httpx.post, f"{url}/v1/predict", content=body, timeout=60)
            for body in bodies]


def _shared_calls(state: Any) -> float:
    """Model calls of the champion that answered more than one request."""
    count = _sample(state, "mlwright_batch_requests_count", role="champion")
    alone = _sample(state, "mlwright_batch_requests_bucket", role="champion", le="1.0")
    return count - alone


def _alone(predict: Any, rows: list[dict[str, Any]], state: Any) -> tuple[list[Any], Any]:
    clean, _, errors = state.validator.validate(rows)
    assert not errors
    return predict(clean)


def test_queued_requests_share_one_call_and_get_their_own_rows(
        served: tuple[LiveServer, Any], telco_rows: pd.DataFrame) -> None:
    server, state = served
    chunks = _chunks(telco_rows, 6)
    bodies = [orjson.dumps(chunk) for chunk in chunks]
    calls_before = _sample(state, "mlwright_batch_requests_count", role="champion")
    pool = ThreadPoolExecutor(len(bodies))
    with _model_thread_held(state) as wait_for:
        futures = _send(pool, server.url, bodies[:1])
        wait_for(1)
        futures += _send(pool, server.url, bodies[1:])
        wait_for(len(bodies))
    responses = [f.result(90) for f in futures]
    assert [r.status_code for r in responses] == [200] * len(bodies)
    # One request went to the thread before the others queued; the five queued behind it
    # went in one call: two calls for six requests.
    calls = _sample(state, "mlwright_batch_requests_count", role="champion") - calls_before
    assert calls == 2, calls
    assert _shared_calls(state) == 1
    assert _sample(state, "mlwright_batch_requests_sum", role="champion") >= 6
    predict = state.champion.active.predict
    for chunk, response in zip(chunks, responses, strict=True):
        body = response.json()
        preds, proba = _alone(predict, chunk, state)
        assert body["predictions"] == preds
        np.testing.assert_allclose(body["probabilities"], proba, rtol=1e-9, atol=1e-12)
    metrics = httpx.get(f"{server.url}/metrics").text
    assert re.search(r'mlwright_batch_requests_bucket\{le="8.0",role="champion"\}', metrics)


def test_a_refused_and_a_failing_request_do_not_fail_their_batch_mates(
        served: tuple[LiveServer, Any], telco_rows: pd.DataFrame) -> None:
    server, state = served
    chunks = _chunks(telco_rows, 5)
    real = state.champion.active
    # The failing one: the model raises on a value only that request holds (a model bug
    # on one input); validation passes it, so it reaches the batch with the others.
    culprit = chunks[2]
    charges = {r["monthly_charges"] for c in chunks if c is not culprit for r in c}
    marker = next(r["monthly_charges"] for r in culprit if r["monthly_charges"] not in charges)

    def fragile(batch: list[dict[str, Any]]) -> Any:
        if any(r["monthly_charges"] == marker for r in batch):
            raise ValueError("the model cannot take this row")
        return real.predict(batch)

    state.champion.swap(Active(real.loaded, fragile))
    refused = [dict(r) for r in chunks[3]]
    refused[7]["tenure"] = "twelve"  # the refused one: a word where a number belongs
    bodies = [orjson.dumps(c) for c in (chunks[0], chunks[1], culprit, refused, chunks[4])]
    pool = ThreadPoolExecutor(len(bodies))
    with _model_thread_held(state) as wait_for:
        futures = _send(pool, server.url, bodies[:1])
        wait_for(1)
        futures += _send(pool, server.url, bodies[1:])
        wait_for(len(bodies) - 1)  # the refused one never reaches the batcher
    responses = [f.result(90) for f in futures]
    assert [r.status_code for r in responses] == [200, 200, 500, 422, 200]
    problem = responses[3].json()
    assert "tenure" in orjson.dumps(problem).decode()
    assert _shared_calls(state) >= 1  # the failing request was in a shared call
    for chunk, response in zip((chunks[0], chunks[1], chunks[4]),
                               (responses[0], responses[1], responses[4]), strict=True):
        preds, proba = _alone(real.predict, chunk, state)
        assert response.json()["predictions"] == preds
        np.testing.assert_allclose(response.json()["probabilities"], proba, rtol=1e-9, atol=1e-12)


def test_a_batch_queued_across_a_hot_swap_is_answered_by_the_new_version(
        served: tuple[LiveServer, Any], telco_rows: pd.DataFrame, run_b: Path) -> None:
    server, state = served
    chunks = _chunks(telco_rows, 5)
    old = state.champion.active
    loaded_b = load_source(str(run_b))
    new = Active(loaded_b, make_predictor(loaded_b))
    assert new.version != old.version
    pool = ThreadPoolExecutor(len(chunks))
    bodies = [orjson.dumps(c) for c in chunks]
    with _model_thread_held(state) as wait_for:
        futures = _send(pool, server.url, bodies[:1])
        wait_for(1)
        futures += _send(pool, server.url, bodies[1:])
        wait_for(len(chunks))
        state.champion.swap(new)  # while one request is with the thread and four queue
    responses = [f.result(90) for f in futures]
    assert [r.status_code for r in responses] == [200] * len(chunks)
    versions = [r.json()["version"] for r in responses]
    assert versions == [old.version] + [new.version] * 4, versions
    assert _shared_calls(state) >= 1
    for chunk, response in zip(chunks, responses, strict=True):
        model = old if response.json()["version"] == old.version else new
        preds, proba = _alone(model.predict, chunk, state)
        assert response.json()["predictions"] == preds
        np.testing.assert_allclose(response.json()["probabilities"], proba, rtol=1e-9, atol=1e-12)


def test_a_client_gone_from_a_queued_request_does_not_stall_the_batch(
        served: tuple[LiveServer, Any], telco_rows: pd.DataFrame) -> None:
    server, state = served
    chunks = _chunks(telco_rows, 5)
    pool = ThreadPoolExecutor(len(chunks))
    with _model_thread_held(state) as wait_for:
        futures = _send(pool, server.url, [orjson.dumps(chunks[0])])
        wait_for(1)
        futures += _send(pool, server.url, [orjson.dumps(c) for c in chunks[1:4]])
        # The leaving client: a raw connection that sends its request and closes.
        gone = orjson.dumps(chunks[4])
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: "
                         b"application/json\r\nContent-Length: " + str(len(gone)).encode()
                         + b"\r\n\r\n" + gone)
            wait_for(len(chunks))
    responses = [f.result(90) for f in futures]
    assert [r.status_code for r in responses] == [200] * 4
    for chunk, response in zip(chunks, responses, strict=False):
        preds, _ = _alone(state.champion.active.predict, chunk, state)
        assert response.json()["predictions"] == preds
    # The server goes on answering, alone and in batches.
    after = httpx.post(f"{server.url}/v1/predict", content=orjson.dumps(chunks[0]), timeout=60)
    assert after.status_code == 200
    assert after.json()["predictions"] == responses[0].json()["predictions"]


def test_max_batch_zero_answers_each_request_in_a_call_of_its_own(
        run_a: Path, tmp_path: Path, telco_rows: pd.DataFrame) -> None:
    from mlwright.config import ServeConfig

    config = ServeConfig.model_validate({"max_batch": 0})
    app = create_app(str(run_a), config=config,
                     database_url=f"sqlite:///{tmp_path / 'log.db'}")
    state = app.state.server
    chunks = _chunks(telco_rows, 4)
    bodies = [orjson.dumps(c) for c in chunks]
    with LiveServer(app) as server:
        pool = ThreadPoolExecutor(len(bodies))
        with _model_thread_held(state) as wait_for:
            futures = _send(pool, server.url, bodies[:1])
            wait_for(1)
            futures += _send(pool, server.url, bodies[1:])
            wait_for(len(bodies))
        responses = [f.result(90) for f in futures]
    assert [r.status_code for r in responses] == [200] * len(bodies)
    assert _shared_calls(state) == 0
    assert _sample(state, "mlwright_batch_requests_count", role="champion") >= len(bodies)
    for chunk, response in zip(chunks, responses, strict=True):
        assert response.json()["predictions"] == _alone(
            state.champion.active.predict, chunk, state)[0]


def test_serve_help_documents_max_batch_rows() -> None:
    from typer.testing import CliRunner

    from mlwright.cli import app

    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--max-batch-rows" in result.output and "0 or 1 turns it off" in result.output


def test_a_wait_for_the_busy_model_thread_does_not_end_inline_predictions(
        run_a: Path, telco_rows: pd.DataFrame) -> None:
    """A lone small request is predicted on the event loop while the model is fast. The
    model's speed is its own time on the thread: a request that waited behind a busy thread
    (here held 0.3 s) must not make the model look slow, or every later lone request would
    pay the hop to the thread (and on a busy machine keep measuring the hop)."""
    import asyncio

    from mlwright.serve.batching import MicroBatcher
    from mlwright.serve.records import RecordValidator

    loaded = load_source(str(run_a))
    predict = make_predictor(loaded)
    threads: list[str] = []

    def recording(batch: list[dict[str, Any]]) -> Any:
        threads.append(threading.current_thread().name)
        return predict(batch)

    row = RecordValidator(loaded.contract).validate(records(telco_rows.head(1)))[0]
    executor = ThreadPoolExecutor(1, thread_name_prefix="model")

    async def run() -> None:
        batcher = MicroBatcher(_slot(loaded, recording), executor, max_batch=1024,
                               max_wait=0.002)
        batcher.start()
        await batcher.submit([dict(row[0])])  # alone: inline
        executor.submit(time.sleep, 0.3)  # the model thread is busy
        batcher.arriving = 1  # another request on its way: this one is not alone
        waited = asyncio.create_task(batcher.submit([dict(row[0])]))
        await asyncio.sleep(0.05)
        batcher.arriving = 0
        await waited
        await batcher.submit([dict(row[0])])  # alone now
        await batcher.stop()

    asyncio.run(run())
    executor.shutdown()
    assert threads[0] == "MainThread" and threads[1].startswith("model"), threads
    assert threads[2] == "MainThread", threads  # inline again, on the loop's thread


def _slot(loaded: Any, predict: Any) -> Any:
    from mlwright.serve.runtime import Slot

    return Slot("champion", None, Active(loaded, predict))
