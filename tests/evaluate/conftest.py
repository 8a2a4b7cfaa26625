"""Trained runs shared by the evaluate tests (one tiny training per dataset and session)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import mlwright as mw
from mlwright.datasets import load_suite


def _split(df: pd.DataFrame, target: str, stratify: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(df, test_size=0.2, random_state=0,
                                   stratify=df[target] if stratify else None)
    return train.reset_index(drop=True), test.reset_index(drop=True)


@pytest.fixture(scope="session")
def telco_split() -> tuple[pd.DataFrame, pd.DataFrame]:
    return _split(load_suite("telco_churn", nrows=2500), "churn", True)


@pytest.fixture(scope="session")
def telco_run(telco_split: tuple[pd.DataFrame, pd.DataFrame]) -> mw.TrainResult:
    return mw.train(telco_split[0], "churn", n_trials=3, time_budget=60,
                    families=["lightgbm", "linear"])


@pytest.fixture(scope="session")
def ames_split() -> tuple[pd.DataFrame, pd.DataFrame]:
    return _split(load_suite("ames_housing"), "Sale_Price", False)


@pytest.fixture(scope="session")
def ames_run(ames_split: tuple[pd.DataFrame, pd.DataFrame]) -> mw.TrainResult:
    return mw.train(ames_split[0], "Sale_Price", n_trials=3, time_budget=60,
                    families=["lightgbm", "linear"])


@pytest.fixture(scope="session")
def mpls() -> pd.DataFrame:
    return load_suite("mpls_person_search", nrows=3000)


@pytest.fixture(scope="session")
def mpls_run(mpls: pd.DataFrame) -> mw.TrainResult:
    return mw.train(mpls, "personSearch", n_trials=2, time_budget=60,
                    families=["lightgbm"])


@pytest.fixture(scope="session")
def mpls_folder(mpls_run: mw.TrainResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mpls_run.save(tmp_path_factory.mktemp("mpls_run"))
