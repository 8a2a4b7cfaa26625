"""A model trained on 70% of telco_churn, and a writer of prediction-log rows.

Rows are written into the log's tables exactly as the server writes them (one row per
scored record: JSON inputs of the record, the predicted label, the probabilities in the
model's class order), scored by the real model: the server's data path without the HTTP hop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlwright.datasets import load_suite

TARGET = "churn"


@dataclass
class Trained:
    folder: Path
    model: Any
    train: pd.DataFrame
    test: pd.DataFrame
    features: list[str]
    metric: str


@pytest.fixture(scope="session")
def holdout_run(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """The model of 70% of telco_churn; ``test`` holds the other 30% (the live traffic)."""
    import mlwright as mw

    df = load_suite("telco_churn")
    order = np.random.default_rng(0).permutation(len(df))
    cut = int(0.7 * len(df))
    train = df.iloc[order[:cut]].reset_index(drop=True)
    test = df.iloc[order[cut:]].reset_index(drop=True)
    result = mw.train(train, TARGET, time_budget=60, n_trials=3,
                      families=["lightgbm", "linear"], seed=0)
    folder = tmp_path_factory.mktemp("run")
    result.save(folder)
    features = result.contract.feature_names
    # save() keeps a sample of training rows: the numeric detectors' reference.
    assert (folder / "sample.parquet").exists()
    return Trained(folder, result.model, train, test, features, result.metric)


__all__ = ["Trained", "holdout_run"]
