"""SIGTERM under load: every request answered before shutdown is in the prediction log."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from serve_helpers import records, serve_process

# slow: a server process stopped by SIGTERM.
pytestmark = pytest.mark.slow


def test_sigterm_under_load_loses_no_logged_prediction(run_a: Path, tmp_path: Path,
                                                       telco_rows: pd.DataFrame) -> None:
    db = tmp_path / "log.db"
    server = serve_process([str(run_a), "--database", f"sqlite:///{db}"], tmp_path)
    with server as (process, url):
        rows = records(telco_rows.head(50))
        answered: list[str] = []
        failures: list[str] = []
        lock = threading.Lock()
        stop = threading.Event()

        def load(worker: int) -> None:
            with httpx.Client(base_url=url, timeout=30) as client:
                i = 0
                while not stop.is_set():
                    body = rows[i % 50] if worker % 2 else {"records": rows[: 1 + i % 10]}
                    i += 1
                    try:
                        response = client.post("/v1/predict", json=body)
                    except httpx.TransportError as exc:  # refused once the server closes
                        with lock:
                            failures.append(type(exc).__name__)
                        return
                    if response.status_code == 200:
                        with lock:
                            answered.append(response.json()["request_id"])

        threads = [threading.Thread(target=load, args=(w,)) for w in range(6)]
        for t in threads:
            t.start()
        while len(answered) < 100:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal: -SIGTERM is a clean exit.
        assert process.wait(60) in (0, -signal.SIGTERM)
        stop.set()
        for t in threads:
            t.join(30)
        with sqlite3.connect(db) as conn:
            logged = {r for (r,) in conn.execute("select distinct request_id from predictions")}
        assert len(answered) >= 100
        assert set(answered) <= logged, len(set(answered) - logged)
