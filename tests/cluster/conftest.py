"""A real Dask cluster for the tests: a LocalCluster of two worker processes with one
thread each, on loopback, started once per session (about 20 s on a busy 2-core machine)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from mlwright.datasets import load_suite


@pytest.fixture(scope="session")
def dask_client() -> Iterator[Any]:
    import distributed  # mlwright[cluster], in the dev extra

    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None,
                                       silence_logs=40)
    # Not the process's default client: `mlwright train/predict --cluster ADDRESS` opens
    # a client of its own that is not one either, so nothing may rely on a default.
    client = distributed.Client(cluster, set_as_default=False)
    try:
        client.wait_for_workers(2, timeout=120)
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture(scope="session")
def telco_1000() -> pd.DataFrame:
    return load_suite("telco_churn", nrows=1000)
