"""``mlwright serve --workers 2``: two processes answer, ``/metrics`` counts both, and
SIGTERM flushes both prediction logs."""

from __future__ import annotations

import re
import signal
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd
import pytest
from serve_helpers import records, serve_process

# slow: a server process with two uvicorn workers.
pytestmark = pytest.mark.slow


def _predict_count(metrics: str) -> float:
    found = re.search(r'^mlwright_requests_total\{endpoint="/v1/predict",status="200"\} (\S+)$',
                      metrics, re.M)
    assert found, metrics[:2000]
    return float(found.group(1))


def test_two_workers_share_metrics_and_flush_their_logs(run_a: Path, tmp_path: Path,
                                                        telco_rows: pd.DataFrame) -> None:
    db, folder = tmp_path / "log.db", tmp_path / "metrics"
    folder.mkdir()
    server = serve_process([str(run_a), "--workers", "2", "--database", f"sqlite:///{db}"],
                           tmp_path, env={"PROMETHEUS_MULTIPROC_DIR": str(folder)})
    with server as (process, url):
        rows = records(telco_rows.head(40))

        def send(worker: int) -> list[str]:
            # A new connection per request, so the kernel hands them to both workers.
            ids = []
            for i in range(25):
                response = httpx.post(f"{url}/v1/predict", json=rows[(worker * 25 + i) % 40])
                assert response.status_code == 200, response.text
                ids.append(response.json()["request_id"])
            return ids

        with ThreadPoolExecutor(8) as pool:
            answered = [i for ids in pool.map(send, range(8)) for i in ids]
        # Each worker keeps its own counters; any scrape must show the sum of both.
        for _ in range(4):
            assert _predict_count(httpx.get(f"{url}/metrics").text) == len(answered) == 200
        pids = {p.stem.rsplit("_", 1)[1] for p in folder.glob("counter_*.db")}
        assert len(pids) == 2, sorted(folder.iterdir())
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) in (0, -signal.SIGTERM)
        with sqlite3.connect(db) as conn:
            logged = {r for (r,) in conn.execute("select distinct request_id from predictions")}
        assert set(answered) <= logged, len(set(answered) - logged)
        assert folder.is_dir()  # a folder the user named is not removed
