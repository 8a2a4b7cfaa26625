"""A class too rare to be both learned and validated is dropped with a warning naming it
(or, when fewer than two classes would be left, a TargetError says which and how to fix it)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

import mlwright as mw
from mlwright.datasets import load_suite
from mlwright.exceptions import TargetError

FAMILIES = ["lightgbm", "linear", "xgboost"]


def _hpc_with_rare_l(n_rows_of_l: int) -> pd.DataFrame:
    df = load_suite("hpc_jobs", nrows=1200)
    rows_of_l = df.index[df["class"] == "L"]
    assert len(rows_of_l) > 10
    return df.drop(rows_of_l[n_rows_of_l:]).reset_index(drop=True)


def test_a_single_row_class_is_dropped_with_a_warning_and_no_trial_fails(
        caplog: pytest.LogCaptureFixture):
    df = _hpc_with_rare_l(1)
    with caplog.at_level(logging.WARNING, logger="mlwright"):
        result = mw.train(df, "class", time_budget=120, n_trials=3, families=FAMILIES)
    # Before: every LightGBM and XGBoost trial failed ("previously unseen labels").
    assert list(result.leaderboard["status"]) == ["complete"] * 3
    assert set(result.leaderboard["family"]) == set(FAMILIES)
    assert list(result.model.classes_) == ["F", "M", "VF"]
    warning = [r.getMessage() for r in caplog.records if "Dropped" in r.getMessage()]
    assert len(warning) == 1 and "'L' (1 row)" in warning[0]
    # The model, its out-of-fold evidence and the contract describe the same rows.
    assert len(result.oof) == len(df) - 1 and "L" not in set(result.oof["y"])
    assert result.predict(df.drop(columns="class").head(20)).tolist() != []


def test_the_scikit_learn_estimator_drops_it_too(caplog: pytest.LogCaptureFixture):
    df = _hpc_with_rare_l(1)
    with caplog.at_level(logging.WARNING, logger="mlwright"):
        clf = mw.AutoClassifier(time_budget=120, n_trials=2, families=["lightgbm", "linear"])
        clf.fit(df.drop(columns="class"), df["class"])
    assert list(clf.leaderboard_["status"]) == ["complete"] * 2
    assert "L" not in set(clf.classes_)
    assert "'L' (1 row)" in caplog.text


def test_a_class_with_fewer_rows_than_folds_is_kept():
    # Two rows and five folds: each row validates once while the other is learned from.
    df = _hpc_with_rare_l(2)
    result = mw.train(df, "class", time_budget=120, n_trials=3, families=FAMILIES)
    assert list(result.leaderboard["status"]) == ["complete"] * 3
    assert "L" in set(result.model.classes_)
    proba = result.predict_proba(df.drop(columns="class").head(5))
    assert proba.shape == (5, 4) and np.allclose(proba.sum(axis=1), 1.0)


def test_a_binary_target_with_a_single_row_minority_is_a_clear_error(telco):
    yes = telco.index[telco["churn"] == "Yes"]
    df = telco.drop(yes[1:]).reset_index(drop=True)
    with pytest.raises(TargetError) as err:
        mw.train(df, "churn", time_budget=60, n_trials=1, families=["linear"])
    message = str(err.value)
    assert "'churn'" in message and "'Yes' (1 row)" in message and "two classes" in message
