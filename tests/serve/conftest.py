"""Fixtures for the server tests: real models trained on telco_churn slices, a real uvicorn
server on a free loopback port (in a thread), and a real MLflow registry in tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from serve_helpers import LiveServer

from mlwright.datasets import load_suite


@pytest.fixture(scope="session")
def telco_data() -> pd.DataFrame:
    return load_suite("telco_churn", nrows=1500)


@pytest.fixture(scope="session")
def telco_rows(telco_data: pd.DataFrame) -> pd.DataFrame:
    """Rows the models did not train on, without the target."""
    return telco_data.iloc[1000:].drop(columns="churn").reset_index(drop=True)


def _train(df: pd.DataFrame, folder: Path, seed: int, families: list[str]) -> Any:
    import mlwright as mw

    result = mw.train(df, "churn", time_budget=20, families=families, seed=seed, n_trials=3)
    result.save(folder)
    return result


@pytest.fixture(scope="session")
def two_runs(tmp_path_factory: pytest.TempPathFactory, telco_data: pd.DataFrame
             ) -> dict[str, Any]:
    """Two real models (champion-like and challenger-like) saved as run folders: "a" on
    1,000 rows (LightGBM + linear, seed 0), "b" on 800 (linear, seed 1)."""
    root = tmp_path_factory.mktemp("runs")
    first = _train(telco_data.iloc[:1000], root / "a", 0, ["lightgbm", "linear"])
    second = _train(telco_data.iloc[:800], root / "b", 1, ["linear"])
    return {"a": (first, root / "a"), "b": (second, root / "b")}


@pytest.fixture(scope="session")
def run_a(two_runs: dict[str, Any]) -> Path:
    return Path(two_runs["a"][1])


@pytest.fixture(scope="session")
def run_b(two_runs: dict[str, Any]) -> Path:
    return Path(two_runs["b"][1])


@pytest.fixture
def live() -> Iterator[type[LiveServer]]:
    yield LiveServer
