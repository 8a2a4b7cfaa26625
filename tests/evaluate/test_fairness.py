"""Fairness slices on MplsStops (race, gender) and on numeric and regression columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlwright as mw
from mlwright.evaluate.fairness import fairness_slices, group_labels
from mlwright.evaluate.scores import Predictions, oof_predictions


@pytest.fixture(scope="module")
def mpls_p(mpls_run: mw.TrainResult) -> tuple[Predictions, np.ndarray]:
    return oof_predictions(mpls_run.oof, "binary", list(mpls_run.model.classes),
                           mpls_run.model.threshold)


@pytest.mark.parametrize("column", ["race", "gender"])
def test_group_rates_match_pandas(column: str, mpls: pd.DataFrame,
                                  mpls_p: tuple[Predictions, np.ndarray]) -> None:
    p, rows = mpls_p
    values = mpls[column].iloc[rows].reset_index(drop=True)
    f = fairness_slices(p, values, column=column, threshold=0.8)
    frame = pd.DataFrame({"g": values.fillna("(missing)").astype(str), "y": p.y == 1,
                          "pred": p.pred == 1})
    by = frame.groupby("g")
    table = f.groups.set_index("group")
    assert table["n"].to_dict() == by.size().to_dict()
    assert table["positive_rate"].to_dict() == pytest.approx(by["pred"].mean().to_dict())
    tpr = frame[frame.y].groupby("g")["pred"].mean()
    for g, v in tpr.items():
        assert table.loc[g, "tpr"] == pytest.approx(v)
    # Ratios are min / max over the groups large enough to count, flagged below 0.8.
    big = table[table["n"] >= 30]
    dp = f.ratios["demographic_parity"]
    assert dp["value"] == pytest.approx(big["positive_rate"].min() / big["positive_rate"].max())
    assert dp["flagged"] == (dp["value"] < 0.8)
    eo = f.ratios["equal_opportunity"]
    assert eo["value"] == pytest.approx(big["tpr"].min() / big["tpr"].max())
    assert f.flagged == [k for k, r in f.ratios.items() if r["flagged"]]


def test_threshold_decides_the_flags(mpls: pd.DataFrame,
                                     mpls_p: tuple[Predictions, np.ndarray]) -> None:
    p, rows = mpls_p
    values = mpls["race"].iloc[rows].reset_index(drop=True)
    strict = fairness_slices(p, values, threshold=1.0)
    lenient = fairness_slices(p, values, threshold=0.01)
    assert set(strict.flagged) == {k for k, r in strict.ratios.items() if r["value"] is not None
                                   and r["value"] < 1.0}
    assert set(lenient.flagged) == {k for k, r in lenient.ratios.items()
                                    if r["value"] is not None and r["value"] < 0.01}
    assert len(strict.flagged) > len(lenient.flagged)


def test_numeric_columns_are_binned_into_quantiles(mpls: pd.DataFrame) -> None:
    labels = group_labels(mpls["lat"], n_bins=4)
    counts = labels[labels != "(missing)"].value_counts()
    assert len(counts) == 4
    assert counts.max() - counts.min() <= 0.02 * len(mpls)
    # Few distinct numbers stay groups of their own; many categories keep the largest.
    assert set(group_labels(mpls["policePrecinct"])) == set(map(str, mpls["policePrecinct"]))
    many = group_labels(mpls["neighborhood"], max_groups=5)
    assert many.nunique() == 5 and "(other)" in set(many)


def test_regression_slices(ames_run: mw.TrainResult,
                           ames_split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    p, rows = oof_predictions(ames_run.oof, "regression", None, None)
    values = ames_split[0]["Bldg_Type"].iloc[rows].reset_index(drop=True)
    f = fairness_slices(p, values, threshold=0.8)
    table = f.groups.set_index("group")
    frame = pd.DataFrame({"g": values.astype(str), "pred": p.pred, "err": np.abs(p.y - p.pred)})
    assert table["mean_prediction"].to_dict() == pytest.approx(
        frame.groupby("g")["pred"].mean().to_dict())
    assert table["mae"].to_dict() == pytest.approx(frame.groupby("g")["err"].mean().to_dict())
    assert set(f.ratios) == {"calibration", "mean_prediction", "mean_actual", "mae"}
    assert 0 < f.ratios["mean_prediction"]["value"] <= 1


def test_regression_parity_of_predictions_is_not_a_finding(
        ames_run: mw.TrainResult, ames_split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """Groups with different actual prices get different predictions: no flag for that;
    a group the model under-predicts by 40% is flagged by calibration parity."""
    p, rows = oof_predictions(ames_run.oof, "regression", None, None)
    values = ames_split[0]["Bldg_Type"].iloc[rows].reset_index(drop=True)
    groups = values.astype(str).to_numpy()
    # Predictions that match each group's actual mean exactly, groups far apart in price.
    means = pd.Series(p.y).groupby(groups).transform("mean").to_numpy()
    honest = Predictions("regression", p.y, means)
    f = fairness_slices(honest, values, threshold=0.8, min_rows=5)
    assert f.ratios["mean_prediction"]["value"] < 0.8  # groups differ in price ...
    assert "mean_prediction" not in f.flagged and "calibration" not in f.flagged
    assert f.ratios["calibration"]["value"] == pytest.approx(1.0)
    big = pd.Series(groups).value_counts().index[0]
    skewed = Predictions("regression", p.y, np.where(groups == big, 0.6 * means, means))
    g = fairness_slices(skewed, values, threshold=0.8, min_rows=5)
    assert "calibration" in g.flagged and g.ratios["calibration"]["lowest"] == big
