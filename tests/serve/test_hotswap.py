"""Serving a registry alias: moving it under load swaps the model with zero failed requests."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from serve_helpers import LiveServer, records

from mlwright.registry import Registry
from mlwright.serve import create_app

# slow: the champion alias moved while a live server is under load.
pytestmark = pytest.mark.slow


def test_alias_moved_under_load_drops_nothing(two_runs: dict[str, Any], tmp_path: Path,
                                              telco_rows: pd.DataFrame) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    registry = Registry(uri)
    (result_a, folder_a), (result_b, folder_b) = two_runs["a"], two_runs["b"]
    first = registry.register(result_a, folder_a, name="churn")
    second = registry.register(result_b, folder_b, name="churn")
    assert first.aliases == ["champion"] and second.aliases == ["challenger"]
    app = create_app("churn@champion", tracking_uri=uri, poll_interval=0.2,
                     database_url=f"sqlite:///{tmp_path / 'log.db'}")
    rows = records(telco_rows.head(20))
    seen: list[str] = []
    failures: list[Any] = []
    stop = threading.Event()
    lock = threading.Lock()

    def load(worker: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            i = worker
            while not stop.is_set():
                i += 1
                try:
                    response = client.post("/v1/predict", json=rows[i % 20])
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if response.status_code != 200:
                    failures.append(response.status_code)
                else:
                    with lock:
                        seen.append(response.json()["version"])

    with LiveServer(app) as server:
        threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        while len(seen) < 50:
            time.sleep(0.05)
        registry.promote("churn", second.version, actor="test", reason="hot swap test")
        deadline = time.monotonic() + 60
        while second.version not in seen[-10:] and time.monotonic() < deadline:
            time.sleep(0.05)
        count = len(seen)
        while len(seen) < count + 50:
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(30)
        info = httpx.get(f"{server.url}/v1/model").json()
    assert failures == []
    assert seen[0] == first.version and seen[-1] == second.version
    # Once swapped, every later answer comes from the new version.
    switch = seen.index(second.version)
    assert set(seen[switch + 8:]) == {second.version}
    assert info["champion"]["version"] == second.version
