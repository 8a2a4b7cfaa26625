"""Shared fixtures: small real slices of the public suite (see mlwright.datasets)."""

from __future__ import annotations

import pandas as pd
import pytest

from mlwright.datasets import load_suite


@pytest.fixture(scope="session")
def telco() -> pd.DataFrame:
    """1,000 rows of telco_churn (binary, categoricals, NaN)."""
    return load_suite("telco_churn", nrows=1000)


@pytest.fixture(scope="session")
def trump() -> pd.DataFrame:
    """800 rows of trump_tweet_source (free text, datetime, booleans)."""
    return load_suite("trump_tweet_source", nrows=800)
