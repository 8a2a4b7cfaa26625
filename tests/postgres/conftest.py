"""A real PostgreSQL server for the tests of the shared store, started once per session
from Debian's binaries (/usr/lib/postgresql/15/bin; ``make postgres`` installs them). A
missing binary fails these tests with the install hint: they never skip. Also one small
real model (telco_churn) to serve and register."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlwright.datasets import load_suite
from mlwright.testing.postgres import PostgresServer

# The server tests' helpers (a live uvicorn server, `mlwright serve` processes).
sys.path.insert(0, str(Path(__file__).parents[1] / "serve"))

_names = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    """A new, empty database of the session's server (its own engine, its own tables)."""
    return postgres.create_database(f"test_{next(_names)}")


@pytest.fixture(scope="session")
def telco_pg() -> pd.DataFrame:
    return load_suite("telco_churn", nrows=1200)


@pytest.fixture(scope="session")
def telco_trained(telco_pg: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
                  ) -> tuple[Any, Path]:
    """(TrainResult, run folder): a linear model on 600 rows (3 trials, reproducible)."""
    import mlwright as mw

    result = mw.train(telco_pg.iloc[:600], "churn", time_budget=30, n_trials=3,
                      families=["linear"], seed=0, n_jobs=1)
    return result, Path(result.save(tmp_path_factory.mktemp("pg-run") / "run"))


@pytest.fixture(scope="session")
def telco_run(telco_trained: tuple[Any, Path]) -> Path:
    return telco_trained[1]


@pytest.fixture(scope="session")
def live_rows(telco_pg: pd.DataFrame) -> list[dict[str, object]]:
    """Records the model did not train on, JSON-ready, without the target."""
    from serve_helpers import records

    return records(telco_pg.iloc[600:].drop(columns="churn").reset_index(drop=True))
