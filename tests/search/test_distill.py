"""--distill: one LightGBM student of the ensemble, scored on the teacher's folds against the
true labels, beside the teacher; the teacher itself is what a run without the flag trains."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

import mlwright as mw
from mlwright.datasets import load_suite
from mlwright.exceptions import ConfigError
from mlwright.run import RunFolder
from mlwright.search.distill import augment
from mlwright.search.splits import make_splits

FAST = {"time_budget": 120, "families": ["lightgbm", "linear"], "n_trials": 3, "seed": 2}


@pytest.fixture(scope="module")
def telco_runs(telco: pd.DataFrame) -> tuple[mw.TrainResult, mw.TrainResult]:
    return mw.train(telco, "churn", **FAST), mw.train(telco, "churn", distill=True, **FAST)


def test_the_student_is_one_lightgbm_and_the_teacher_ships_unchanged(telco, telco_runs):
    plain, distilled = telco_runs
    student = distilled.alternates["student"]
    assert len(student.members) == 1
    assert isinstance(student.members[0]["estimator"], lgb.LGBMClassifier)
    # --distill adds a student; the teacher is the model a run without it trains.
    np.testing.assert_array_equal(plain.predict_proba(telco.head(200)),
                                  distilled.predict_proba(telco.head(200)))
    assert plain.cv_score == distilled.cv_score and plain.distill is None
    assert "distill" not in plain.params and distilled.params["distill"] is True
    proba = student.predict_proba(telco.head(50))
    assert proba.shape == (50, 2) and np.allclose(proba.sum(axis=1), 1.0)


def test_the_student_cv_is_on_the_teachers_folds_and_the_true_labels(telco_runs):
    _, result = telco_runs
    search, d = result.search, result.distill
    y, metric, student = search.y_encoded, search.metric, search.student
    assert len(student.fold_losses) == len(search.fold_losses) == 5
    # The search's folds: make_splits with the run's seed (what run_search used).
    folds = make_splits(y, search.task, cv="auto", seed=FAST["seed"]).folds
    for (_, va), loss in zip(folds, student.fold_losses, strict=True):
        assert loss == pytest.approx(metric.loss(y[va], student.oof[va]))
    assert d["student"]["cv"] == pytest.approx(metric.to_score(
        metric.loss(y[search.oof_mask], student.oof[search.oof_mask])))
    # Both ranges come from the same rows and folds: sane and around each CV score.
    for name in ("teacher", "student"):
        rng = d[name]["interval"]
        assert rng["low"] <= d[name]["cv"] <= rng["high"] and rng["high"] - rng["low"] < 0.3
        assert d[name]["p50_us"] > 0 and d[name]["size_mb"] > 0
    assert d["shipped"] == "teacher" and d["student"]["n_augmented"] > 0
    assert d["student"]["cv"] > 0.75  # a student that learned the task (AUC)


@pytest.mark.slow
def test_ship_the_regression_student_and_reload_both(tmp_path):
    df = load_suite("ames_housing", nrows=900)
    runs = [mw.train(df, "Sale_Price", distill="ship", **FAST) for _ in range(2)]
    result = runs[0]
    est = result.model.members[0]["estimator"]
    assert isinstance(est, lgb.LGBMRegressor) and len(result.model.members) == 1
    d = result.distill
    assert d["shipped"] == "student" and result.cv_score == pytest.approx(d["student"]["cv"])
    # The result's evidence is the student's: its out-of-fold table, against true labels.
    rmse = np.sqrt(np.mean((result.oof["y"] - result.oof["prediction"]) ** 2))
    assert rmse == pytest.approx(result.cv_score)
    # Fixed seed and trials: the same student twice.
    np.testing.assert_array_equal(result.predict(df.head(100)), runs[1].predict(df.head(100)))
    folder = RunFolder(result.save(tmp_path / "run"))
    teacher = folder.load_alternate("teacher")
    assert len(teacher.members) >= 1 and folder.read_metrics()["distill"]["shipped"] == "student"
    np.testing.assert_array_equal(folder.load_model().predict(df.head(20)),
                                  result.predict(df.head(20)))
    assert folder.load().distill == folder.read_metrics()["distill"]


def test_augmented_rows_resample_each_column_and_are_seeded(telco):
    X = telco.drop(columns="churn")
    a = augment(X, 500, np.random.default_rng(0))
    b = augment(X, 500, np.random.default_rng(0))
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == list(X.columns) and (a.dtypes == X.dtypes).all()
    for col in X.columns:  # every value is one the column holds
        assert set(a[col].dropna().unique()) <= set(X[col].dropna().unique())
    # Not copies: most synthetic rows differ from every real row in some column.
    real = set(map(tuple, X.astype(str).to_numpy()))
    assert sum(tuple(r) not in real for r in a.astype(str).to_numpy()) > 400


def test_a_wrong_distill_value_fails_before_training(telco):
    with pytest.raises(ConfigError, match="distill must be"):
        mw.train(telco, "churn", distill="yes please", time_budget=1)


def test_ship_student_without_distill_is_refused_before_reading_data(tmp_path, monkeypatch,
                                                                    capsys):
    from cli_runner import run_cli  # tests/cli_runner.py

    code, _, err = run_cli(["train", str(tmp_path / "absent.csv"), "--target", "churn",
                            "--ship-student"], monkeypatch, capsys)
    assert code == 2 and "--ship-student" in err and "add --distill" in err
