"""A small model trained once (telco_churn slice, trial-limited so it is reproducible) and
saved as a run folder; registries live in temporary sqlite stores."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from registry_helpers import free_port, sqlite_uri

import mlwright as mw
from mlwright.datasets import load_suite

PYTHON = sys.executable


@pytest.fixture(scope="session")
def telco_small() -> pd.DataFrame:
    return load_suite("telco_churn", nrows=600)


@pytest.fixture(scope="session")
def small_run(telco_small: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory):
    """(TrainResult, run folder, pickled result path) of a 3-trial search on 600 rows."""
    import joblib

    result = mw.train(telco_small, "churn", time_budget=60, n_trials=3,
                      families=["lightgbm", "linear"], seed=0, n_jobs=1)
    root = tmp_path_factory.mktemp("trained")
    folder = result.save(root / "run")
    pickled = root / "result.joblib"
    joblib.dump(result, pickled)
    telco_small.to_csv(root / "telco.csv", index=False)
    return result, folder, pickled


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("store")


@pytest.fixture(scope="module")
def registry(store: Path):
    from mlwright.registry import Registry

    return Registry(sqlite_uri(store))


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory):
    """A real ``mlflow server`` on loopback with its own sqlite backend and artifact folder."""
    import httpx

    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen(
        [PYTHON, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", sqlite_uri(root),
         "--artifacts-destination", (root / "artifacts").as_uri()],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError("mlflow server exited:\n" + (root / "server.log").read_text())
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("mlflow server did not start:\n"
                                   + (root / "server.log").read_text())
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
